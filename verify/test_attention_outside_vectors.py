"""PyTorch's own test cases for nn.TransformerEncoderLayer, reproduced in every voice.

The cases are read from the installed wheel's `torch/testing/_internal/common_modules.py`
(`module_inputs_torch_nn_TransformerEncoderLayer`): its function's source is executed on its own (the module imports
expecttest, which the wheel does not ship), with torch.testing.make_tensor for its inputs, seeded. Each case's module
(its constructor arguments: relu and F.gelu, bias=False, norm_first, batch_first True and False) and forward input
((T, B, E) time-major, or an unbatched (T, E) sequence, given a batch of one) is imported by the torch importer, every
voice builds the description, and each agrees with the module's own output at its float32 bar. Cases with a
src_mask or src_key_padding_mask are kept with the reason they are skipped (masks are not imported yet; the no-batch
cases' attention mask is not a causal one).
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
