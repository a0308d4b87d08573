"""PyTorch's own test cases for nn.TransformerEncoderLayer and Keras' for MultiHeadAttention, reproduced here.

The cases are read from the installed wheel's `torch/testing/_internal/common_modules.py`
(`module_inputs_torch_nn_TransformerEncoderLayer`): its function's source is executed on its own (the module imports
expecttest, which the wheel does not ship), with torch.testing.make_tensor for its inputs, seeded. Each case's module
(its constructor arguments: relu and F.gelu, bias=False, norm_first, batch_first True and False) and forward input
((T, B, E) time-major, or an unbatched (T, E) sequence, given a batch of one) is imported by the torch importer, every
voice builds the description, and each agrees with the module's own output at its float32 bar. Cases with a
src_mask or src_key_padding_mask are kept with the reason they are skipped (masks are not imported yet; the no-batch
cases' attention mask is not a causal one).

Keras' `keras/src/layers/attention/multi_head_attention_test.py` (read as source): test_correctness's identity
kernels and its expected output, in every voice at that test's atol; test_compute_output_shape's sequence cases,
the kind's output shape against the layer's own. ONNX's Attention node cases (onnx.backend.test.case.node.attention):
Q, K, V side by side in one input, selected by 0/1 projections, every voice against ONNX's expected output (3-D and
4-D, scaled, causal, value heads of another size); the rest skipped with the reason.
"""

from __future__ import annotations

import ast
import itertools
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from impls import SHORT, frameworks, unavailable_reason
from impls.model import voices
from verify.headroom import check

FUNCTION = "module_inputs_torch_nn_TransformerEncoderLayer"


class _FunctionInput:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class _ModuleInput:
    def __init__(self, constructor_input, forward_input=None, desc="", reference_fn=None):
        self.constructor_input, self.forward_input, self.desc = constructor_input, forward_input, desc


def _cases() -> list:
    """(id, constructor args, kwargs, input, skip reason or None) for every case of PyTorch's function."""
    try:
        torch = frameworks.load("torch")
    except Exception as e:  # noqa: BLE001 - no torch here: one skipped case saying so
        return [pytest.param(None, id="torch-unavailable", marks=pytest.mark.skip(reason=str(e)))]
    path = Path(torch.__file__).parent / "testing" / "_internal" / "common_modules.py"
    tree = ast.parse(path.read_text())
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == FUNCTION)
    torch.manual_seed(25)
    ns = {"torch": torch, "F": torch.nn.functional, "partial": partial, "itertools": itertools,
          "FunctionInput": _FunctionInput, "ModuleInput": _ModuleInput, "no_batch_dim_reference_fn": print,
          "make_tensor": lambda shape, device, dtype, requires_grad=False: torch.testing.make_tensor(
              shape, device=device, dtype=dtype, low=-1.0, high=1.0)}  # fmt: skip
    exec(compile(ast.Module([fn], []), str(path), "exec"), ns)  # noqa: S102 - the wheel's own test-case function
    out = []
    for k, c in enumerate(ns[FUNCTION](None, "cpu", torch.float32, False, False)):
        fwd = c.forward_input
        masks = {m: v for m, v in fwd.kwargs.items() if v is not None}
        why = f"given {sorted(masks)}: masks passed to a Transformer encoder are not imported" if masks else None
        out.append(pytest.param((c.constructor_input.args, c.constructor_input.kwargs, fwd.args[0], why),
                                id=f"{k}-{c.desc or 'no_batch_dim'}"))  # fmt: skip
    return out


CASES = _cases()


def _module(args, kwargs, x):
    """The case's layer in a module taking a batch-first (B, T, E) input: its time-major (T, B, E) form through
    x.transpose(0, 1) where batch_first is False (PyTorch's default)."""
    torch = frameworks.load("torch")
    nn = torch.nn
    layer = nn.TransformerEncoderLayer(*args, **kwargs).eval()

    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = layer

        def forward(self, t):
            return self.layer(t) if layer.self_attn.batch_first else self.layer(t.transpose(0, 1)).transpose(0, 1)

    batched = x[None] if x.dim() == 2 else (x if layer.self_attn.batch_first else x.transpose(0, 1))
    return Wrapped().eval(), layer, batched


@pytest.mark.parametrize("case", CASES)
def test_pytorch_encoder_layer_cases_are_reproduced_by_every_voice(case):
    args, kwargs, x, why = case
    if why:
        pytest.skip(why)
    torch = frameworks.load("torch")
    from impls.importers import torch_import

    net, layer, batched = _module(args, kwargs, x)
    with torch.no_grad():  # the case's own module on its own input (time-major, or unbatched)
        own = layer(x).numpy()
    want = own[None] if x.dim() == 2 else (own if layer.self_attn.batch_first else own.transpose(1, 0, 2))
    imported = torch_import.from_module(net, tuple(batched.shape), "pytorch-case")
    xb = batched.numpy().astype(np.float32)
    for voice in voices.VOICES:
        if unavailable_reason(voice) or voices.refusal(voice, imported.model, "float32"):
            continue
        got = voices.build(voice, imported.model, "float32").forward(xb)
        check(got, want.astype(np.float64), "float32", voice, what=f"{SHORT[voice]} {args} {kwargs}")


# --------------------------------------------------------------------------- Keras' own MultiHeadAttention cases


def _keras_test_source() -> tuple[Path, ast.Module]:
    keras = frameworks.load("keras")
    path = Path(keras.__file__).parent / "src" / "layers" / "attention" / "multi_head_attention_test.py"
    return path, ast.parse(path.read_text())


def _method(tree: ast.Module, name: str) -> ast.FunctionDef:
    return next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name)


def test_keras_correctness_case_is_reproduced_by_every_voice():
    """Keras' test_correctness: 8 heads of key_dim 8, identity kernels, zero biases, query = key = I(8), value =
    arange(64) / 100; its expected output (read from the test's source) at the test's own atol 1e-2. The value is the
    input through a dense whose kernel is that value (I . V = V exactly): a description takes one input."""
    from impls.model.description import INPUT, Layer, Model

    try:
        _, tree = _keras_test_source()
    except (FileNotFoundError, Exception) as e:  # noqa: BLE001 - no Keras test source in this wheel
        pytest.skip(f"Keras' test source: {e}")
    fn = _method(tree, "test_correctness")
    first = next(n for n in ast.walk(fn) if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "expected_output")
    expected_row = np.array(ast.literal_eval(first.value.args[0]))  # the per-query value, tiled over key_dim
    heads = key_dim = 8
    want = np.tile(expected_row[None, :, None], (1, 1, key_dim))
    eye = np.repeat(np.identity(key_dim)[:, None, :], heads, axis=1)
    value = np.arange(key_dim * key_dim).reshape(key_dim, key_dim) / 100.0
    # Keras' test sets every kernel to the same (8, 8, 8) array, kernel[a, b, c] = (a == c): as the output kernel
    # (H, dv, Eo) it sums each head's values into the feature of the head's own index
    attn = {"query_kernel": eye, "query_bias": np.zeros((heads, key_dim)), "key_kernel": eye, "value_kernel": eye,
            "value_bias": np.zeros((heads, key_dim)), "output_kernel": eye, "output_bias": np.zeros(key_dim)}
    m = Model("keras_correctness", (key_dim, key_dim), (
        Layer("dense", "value", {"units": key_dim, "use_bias": False}, {"kernel": value}),
        Layer("multi_head_attention", "mha", {"num_heads": heads, "key_dim": key_dim}, attn, (INPUT, "value", INPUT)),
    )).check(1)
    x = np.identity(key_dim)[None]
    for voice in voices.VOICES:
        if unavailable_reason(voice) or voices.refusal(voice, m, "float32"):
            continue
        got = voices.build(voice, m, "float32").forward(x.astype(np.float32))
        assert np.max(np.abs(got - want)) <= 1e-2, (voice, got[0, :, 0], expected_row)


def test_keras_output_shape_cases_are_the_descriptions():
    """Keras' test_compute_output_shape's sequence cases ((B, T, E) query, value and key; output_shape None or an
    int), read from the test's decorator: the kind's output shape is the layer's own. The high-dimensional and
    tuple-output cases are outside the description's attention (one sequence axis, one feature axis)."""
    from impls.model.layers import spec_of

    keras = frameworks.load("keras")
    try:
        _, tree = _keras_test_source()
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"Keras' test source: {e}")
    fn = _method(tree, "test_compute_output_shape")
    spec, done = spec_of("multi_head_attention"), []
    for name, q, v, k, out in (ast.literal_eval(a) for a in fn.decorator_list[0].args):
        if len(q) != 2 or (out is not None and not isinstance(out, int)):
            continue  # high-dimensional attention, or an output of several axes
        opts = spec.options({"num_heads": 2, "key_dim": 2, "value_dim": 2, **({"output_dim": out} if out else {})})
        mha = keras.layers.MultiHeadAttention(num_heads=2, key_dim=2, value_dim=2, output_shape=out)
        args = [np.ones((7, *q)), np.ones((7, *v))] + ([np.ones((7, *k))] if k else [])
        assert tuple(spec.output_shape(opts, tuple(a.shape for a in args))) == tuple(mha(*args).shape), name
        done.append(name)
    assert len(done) >= 2, done


# --------------------------------------------------------------------------- ONNX's own Attention node cases


def _onnx_attention_cases() -> list:
    """ONNX's Attention node cases (written in memory by the onnx package's own case code), each with the reason it
    is skipped where the description's attention is not that computation: an attn_mask input, past key/value,
    softcap, grouped-query heads, qk_matmul_output_mode, float16 data."""
    import importlib

    try:
        onnx = frameworks.load("onnx")
        node_cases = importlib.import_module("onnx.backend.test.case.node")
        before = len(node_cases._NodeTestCases)
        importlib.import_module("onnx.backend.test.case.node.attention")
    except Exception as e:  # noqa: BLE001 - no onnx, or no Attention cases in this onnx
        return [pytest.param(None, id="onnx-attention-unavailable", marks=pytest.mark.skip(reason=str(e)))]
    out = []
    for c in node_cases._NodeTestCases[before:]:
        node = c.model.graph.node[0]
        if node.op_type != "Attention" or len(c.model.graph.node) != 1 or not c.data_sets:
            continue  # the *_expanded function bodies: the same data, decomposed
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        (ins, outs) = c.data_sets[0]
        why = None
        if len([i for i in node.input if i]) != 3:
            why = f"inputs {list(node.input)}: only Q, K, V (an attn_mask or past key/value is no option of the kind)"
        elif set(attrs) - {"is_causal", "scale", "q_num_heads", "kv_num_heads"}:
            why = f"attributes {sorted(set(attrs) - {'is_causal', 'scale', 'q_num_heads', 'kv_num_heads'})}"
        elif ins[0].dtype != np.float32:
            why = f"{ins[0].dtype} data: the voices compute float32 and float64"
        elif attrs.get("q_num_heads", 0) != attrs.get("kv_num_heads", 0) or (ins[0].ndim == 4 and ins[0].shape[1] != ins[1].shape[1]):
            why = "grouped-query heads (fewer key/value heads than query heads)"
        out.append(pytest.param((c.name, attrs, ins, outs[0], why), id=c.name))
    return out


def _heads_last(a: np.ndarray, heads: int) -> np.ndarray:
    """(B, H, T, d) -> (B, T, H d), head-major; a 3-D (B, T, H d) as it is."""
    return a if a.ndim == 3 else a.transpose(0, 2, 1, 3).reshape(a.shape[0], a.shape[2], -1)


@pytest.mark.parametrize("case", _onnx_attention_cases())
def test_onnx_attention_node_cases_are_reproduced_by_every_voice(case):
    """Q, K and V (projected already) become one input, their features side by side, Q's rows padded to K's count
    with zeros; the description's projections select each (0/1 kernels, no bias: exact), its output kernel merges the
    heads as ONNX's 3-D output does; the first Tq rows are compared (a query's output reads only its own row, and a
    causal query i attends keys j <= i, ONNX's top-left alignment). A scale attribute other than 1/sqrt(dk) is folded
    into the query's kernel."""
    from impls.model.description import Layer, Model

    name, attrs, ins, want, why = case
    if why:
        pytest.skip(why)
    q, k, v = ins
    heads = q.shape[1] if q.ndim == 4 else int(attrs["q_num_heads"])
    q3, k3, v3 = (_heads_last(a, heads) for a in (q, k, v))
    b, tq, eq = q3.shape
    tk, ek, ev = k3.shape[1], k3.shape[2], v3.shape[2]
    dk, dv = eq // heads, ev // heads
    assert tq <= tk, name
    x = np.zeros((b, tk, eq + ek + ev), np.float32)
    x[:, :tq, :eq], x[:, :, eq:eq + ek], x[:, :, eq + ek:] = q3, k3, v3
    width = eq + ek + ev

    def select(start: int, n: int, d: int) -> np.ndarray:
        kernel = np.zeros((width, n), np.float64)
        kernel[start:start + n] = np.identity(n)
        return kernel.reshape(width, heads, d)

    factor = float(attrs.get("scale", 1 / np.sqrt(dk))) * np.sqrt(dk)  # the kind scales by 1/sqrt(dk) itself
    w = {"query_kernel": select(0, eq, dk) * factor, "key_kernel": select(eq, ek, dk), "value_kernel": select(eq + ek, ev, dv),
         "output_kernel": np.identity(heads * dv).reshape(heads, dv, heads * dv)}  # fmt: skip
    opts = {"num_heads": heads, "key_dim": dk, "value_dim": dv, "output_dim": heads * dv, "use_bias": False,
            "causal": bool(attrs.get("is_causal"))}
    m = Model(name, x.shape[1:], (Layer("multi_head_attention", "attention", opts, w, ("input", "input", "input")),)).check(b)
    expect = _heads_last(want, heads)
    for voice in voices.VOICES:
        if unavailable_reason(voice) or voices.refusal(voice, m, "float32"):
            continue
        got = voices.build(voice, m, "float32").forward(x)[:, :tq]
        check(got, expect.astype(np.float64), "float32", voice, what=f"{name} {SHORT[voice]}")
