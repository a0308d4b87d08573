"""Issue 25's ONNX importer for attention: the decomposed MatMul / Softmax graphs and opset 23's Attention op.

- The issue's torch classifier (Embedding -> TransformerEncoder(2 x TransformerEncoderLayer(32, 4, 64,
  batch_first=True)) -> mean -> Linear) exported by torch.onnx (the dynamo exporter at its default opset, writing the
  decomposition, and at opset 23, writing Attention ops; the TorchScript exporter where it exports) imports as two
  multi_head_attention layers whose reference agrees with ONNX Runtime's run of the file layer by layer; `nnparity
  certify model.onnx` exits 0; `nnparity port model.onnx --to torch / keras / flax` agrees within 2e-5, each port
  loaded by its own framework alone.
- Our ONNX port of attention models (causal, no biases, value and output sizes of their own, float64) re-imports to
  the same description.
- Planted convention bugs, each caught: q and k swapped, the scale applied twice or missing, the heads split (d, H)
  instead of (H, d).
- ONNX's own Attention node cases (onnx.backend.test.case.node.attention, written in memory by the onnx package)
  through the importer: Q, K, V side by side in one input picked by 0/1 projections, the op with the case's
  attributes, each description's reference against the case's expected output; the cases outside the kind are
  refused naming why.
- Refused, naming the node and why: cross attention, a mask that is not causal, grouped-query heads, softcap.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from impls import frameworks
from impls.contract.tolerance import error_stats, tolerance
from impls.importers import UnsupportedLayer
from impls.model import seeded
from impls.model.compose import reference_forward, reference_outputs
from impls.model.layers import spec_of
from nnparity import cli
from tests.test_attention import ports_alone
from verify.conftest import load_framework

onnx_import = pytest.importorskip("impls.importers.onnx_import", exc_type=ImportError)
onnx_port = pytest.importorskip("impls.ports.onnx_port", exc_type=ImportError)
from impls.importers.onnx_import import attention as onnx_attention

BAR = tolerance("float32")
AGREE = 2e-5
B, T = 3, 7

CLASSIFIER = """
import torch
from torch import nn


class Classifier(nn.Module):
    def __init__(self, vocab=50, width=32, classes=4):
        super().__init__()
        self.embedding = nn.Embedding(vocab, width)
        layer = nn.TransformerEncoderLayer(width, 4, 64, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2)
        self.fc = nn.Linear(width, classes)

    def forward(self, ids):
        return self.fc(self.encoder(self.embedding(ids)).mean(dim=1))
"""


def _ids(seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 50, (B, T))


def _export(path, dynamo: bool, opset: int | None):
    """The issue's classifier, seeded, with non-zero attention biases, exported by torch.onnx."""
    torch = load_framework("torch")
    ns: dict = {}
    exec(CLASSIFIER, ns)  # noqa: S102 - the test's own model source
    torch.manual_seed(0)
    net = ns["Classifier"]().eval()
    with torch.no_grad():  # torch initialises the in/out projection biases to 0: give them values
        for name, p in net.named_parameters():
            if name.endswith(("in_proj_bias", "out_proj.bias")):
                p.uniform_(-0.3, 0.3)
    ids = torch.from_numpy(_ids())
    kw = {"opset_version": opset} if opset else {}
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (ids,), str(path), dynamo=dynamo, **kw)
    return net


EXPORTS = {"dynamo": (True, None), "dynamo_opset23": (True, 23), "torchscript": (False, 17)}


@pytest.fixture(scope="module", params=list(EXPORTS))
def exported(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(f"onnx_attention_{request.param}")
    dynamo, opset = EXPORTS[request.param]
    try:
        net = _export(d / "model.onnx", dynamo, opset)
    except Exception as e:  # noqa: BLE001 - an exporter that cannot write the model: say so
        pytest.skip(f"torch.onnx.export(dynamo={dynamo}) fails on the classifier: {type(e).__name__}: {str(e)[:300]}")
    return request.param, d, net


def _torch_out(net, x: np.ndarray) -> np.ndarray:
    torch = load_framework("torch")
    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy()


def test_the_exported_classifier_imports_as_two_attentions_and_agrees_layer_by_layer(exported):
    from impls import convert

    name, d, net = exported
    imported = onnx_import.load_file(d / "model.onnx", None)
    m = imported.model
    attn = [la for la in m.layers if la.kind == "multi_head_attention"]
    assert len(attn) == 2, [la.kind for la in m.layers]
    assert all(la.options["num_heads"] == 4 and la.options["key_dim"] == 8 and not la.options["causal"]
               and la.options["use_bias"] for la in attn)  # fmt: skip
    x = _ids(3)
    want = _torch_out(net, x)
    assert error_stats(imported.forward(x), want).rel <= BAR  # the file is the module
    m64 = m.astype("float64")
    assert error_stats(reference_forward(m64, x), want).rel <= BAR
    for i, (got, r) in enumerate(zip(imported.layer_outputs(x), reference_outputs(m64, x), strict=True)):
        assert error_stats(got, r).rel <= BAR, (name, m.layers[i].label(i))
    for la, layer in zip(attn, net.encoder.layers, strict=True):  # torch's own weights, through its convention
        w = convert.mha_from_torch({k: v.detach().numpy() for k, v in layer.self_attn.state_dict().items()}, 4)
        for k, a in w.items():
            np.testing.assert_allclose(la.weights[k], a, rtol=1e-5, atol=1e-6, err_msg=f"{name} {la.name}.{k}")


@pytest.mark.parametrize("name", ["dynamo", "dynamo_opset23"])
def test_the_exported_classifier_ports_to_every_framework_alone_and_certifies(tmp_path_factory, name, capsys):
    d = tmp_path_factory.mktemp(f"onnx_attention_ports_{name}")
    dynamo, opset = EXPORTS[name]
    net = _export(d / "model.onnx", dynamo, opset)
    x = _ids(5)
    targets = (("torch", "port_torch"), ("keras", "port.keras"), ("flax", "port_flax"))
    got = ports_alone(d, str(d / "model.onnx"), x, _torch_out(net, x), capsys, targets=targets)
    print(name, "ports agree with torch:", got)
    assert all(err <= AGREE for err in got.values()), got
    rc = cli.main(["certify", str(d / "model.onnx"), "--no-bench", "-o", str(d / "cert")])
    assert rc == 0, (d / "cert" / "certificate.md").read_text()[:3000]


# --------------------------------------------------------------------------- tests/test_attention.py's torch modules

REFUSED_NETS = """
import torch
from torch import nn


class Banded(nn.Module):  # a mask the module holds that is not the causal one
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(12, 2, batch_first=True)
        self.register_buffer("band", (torch.arange(6)[:, None] - torch.arange(6)[None, :]).abs() > 2)

    def forward(self, x):
        return self.attn(x, x, x, attn_mask=self.band)[0]


class Cross(nn.Module):
    def __init__(self):
        super().__init__()
        self.memory = nn.Linear(12, 12)
        self.attn = nn.MultiheadAttention(12, 2, batch_first=True)

    def forward(self, x):
        m = torch.tanh(self.memory(x))
        return self.attn(x, m, m)[0]
"""


@pytest.fixture(scope="module")
def torch_nets(tmp_path_factory):
    import runpy
    import textwrap

    from tests.test_attention import TORCH_NET

    load_framework("torch")
    d = tmp_path_factory.mktemp("onnx_attention_nets")
    (d / "nets.py").write_text(textwrap.dedent(TORCH_NET) + REFUSED_NETS)
    return d, runpy.run_path(str(d / "nets.py"))


def _export_module(net, x, path, dynamo: bool, opset: int | None) -> None:
    import contextlib
    import io
    import warnings

    torch = load_framework("torch")
    kw = {"opset_version": opset} if opset else {}
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.from_numpy(x),), str(path), dynamo=dynamo, **kw)


@pytest.mark.parametrize("export", list(EXPORTS))
@pytest.mark.parametrize("name", ["post_norm", "pre_norm", "no_bias", "time_major", "causal"])
def test_torch_encoder_layers_and_attention_modules_export_and_import(torch_nets, tmp_path, name, export):
    """nn.TransformerEncoderLayer (post- and pre-norm, bias=False, batch_first=False on x.transpose(0, 1), a GELU, a
    causal mask) and nn.MultiheadAttention (need_weights=True, bool and -inf masks) through each exporter."""
    _, ns = torch_nets
    x = np.random.default_rng(2).uniform(-1, 1, (B, 6, 5)).astype(np.float32)
    _export_module(ns[name], x, tmp_path / "m.onnx", *EXPORTS[export])
    imported = onnx_import.load_file(tmp_path / "m.onnx", None)
    attn = [la for la in imported.model.layers if la.kind == "multi_head_attention"]
    assert len(attn) == (3 if name in ("causal", "time_major") else 2)
    assert all(la.options["causal"] == (name == "causal") for la in attn)
    assert all(la.options["use_bias"] == (name != "no_bias") for la in attn)
    want = _torch_out(ns[name], x)
    assert error_stats(reference_forward(imported.model.astype("float64"), x.astype(np.float64)), want).rel <= BAR


@pytest.mark.parametrize("name, why", [
    ("Banded", "neither none nor causal"),
    ("Cross", "cross attention"),
])  # fmt: skip
def test_torch_masks_and_cross_attention_are_refused_naming_why(torch_nets, tmp_path, name, why):
    _, ns = torch_nets
    x = np.random.default_rng(2).uniform(-1, 1, (B, 6, 12)).astype(np.float32)
    _export_module(ns[name]().eval(), x, tmp_path / "m.onnx", True, None)
    with pytest.raises(UnsupportedLayer, match=f"belongs to a self-attention the importer does not read: .*{why}"):
        onnx_import.load_file(tmp_path / "m.onnx", None)


# --------------------------------------------------------------------------- our ONNX port, imported back

ROUND = {
    "encoder": ((6, 5), [("dense", "proj", {"units": 12}),
                         ("multi_head_attention", "attn", {"num_heads": 3, "key_dim": 4}, ("proj", "proj")),
                         ("add", "res", {}, ("proj", "attn")), ("dense", "out", {"units": 3})]),
    "sizes_causal_no_bias": ((6, 8), [("multi_head_attention", "attn", {"num_heads": 2, "key_dim": 3, "value_dim": 5,
                                                                        "output_dim": 7, "use_bias": False,
                                                                        "causal": True}, ("input", "input")),
                                      ("dense", "out", {"units": 3})]),
    "returned": ((5, 8), [("multi_head_attention", "attn", {"num_heads": 4, "key_dim": 2}, ("input", "input"))]),
}  # fmt: skip


def _round_model(case: str, dtype: str = "float32"):
    shape, specs = ROUND[case]
    return seeded.chain(case, shape, specs, 4, "channels_last", B, dtype=dtype, input_dtype=dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", list(ROUND))
def test_our_onnx_port_of_attention_imports_back_to_the_same_description(tmp_path, case, dtype):
    model = _round_model(case, dtype)
    path = onnx_port.write(model, tmp_path / f"{case}.onnx")[0]
    back = onnx_import.load_file(path, None).model
    assert [(la.kind, la.name, la.inputs) for la in back.layers] == [(la.kind, la.name, la.inputs) for la in model.layers]
    for a, b in zip(back.layers, model.layers, strict=True):
        spec = spec_of(b.kind)
        assert spec.options(a.options) == spec.options(b.options), b.name
        assert sorted(a.weights) == sorted(b.weights), b.name
        for k, w in b.weights.items():
            np.testing.assert_allclose(a.weights[k], w, rtol=1e-6 if dtype == "float32" else 1e-13, atol=0,
                                       err_msg=f"{b.name}.{k}")  # fmt: skip
    x = np.random.default_rng(0).uniform(-1, 1, (B, *model.input_shape))
    assert error_stats(reference_forward(back.astype("float64"), x), reference_forward(model.astype("float64"), x)).rel <= 1e-6


# --------------------------------------------------------------------------- planted convention bugs

PLANTED = {
    "q_k_swapped": ("query_key", lambda left, right: (right, left)),
    "scale_twice": ("query_factor", lambda c, dk: np.asarray(c, np.float64)),  # the graph's scale kept, and the description's
    "scale_missing": ("query_factor", lambda c, dk: np.full(np.shape(c), np.sqrt(dk))),  # no scale at all
    "heads_d_major": ("stack_heads", lambda ph: np.stack(ph, axis=2).reshape(ph[0].shape[0], len(ph), -1)),
}


@pytest.mark.parametrize("source", ["our_port", "dynamo_opset23"])
@pytest.mark.parametrize("bug", list(PLANTED))
def test_a_planted_convention_bug_is_caught(tmp_path, monkeypatch, bug, source):
    if source == "our_port":
        path = onnx_port.write(_round_model("encoder"), tmp_path / "m.onnx")[0]
        x = np.random.default_rng(2).uniform(-1, 1, (B, 6, 5))
    else:
        path = tmp_path / "m.onnx"
        _export(path, *EXPORTS[source])
        x = _ids(2)
    good = onnx_import.load_file(path, None)
    assert error_stats(reference_forward(good.model.astype("float64"), x), good.forward(x)).rel <= BAR
    fn, planted = PLANTED[bug]
    monkeypatch.setattr(onnx_attention, fn, planted)
    bad = onnx_import.load_file(path, None)
    assert error_stats(reference_forward(bad.model.astype("float64"), x), bad.forward(x)).rel > 1e-3


# --------------------------------------------------------------------------- ONNX's own Attention node cases

KIND_ATTRS = {"is_causal", "scale", "q_num_heads", "kv_num_heads", "qk_matmul_output_mode"}


def _node_cases() -> list:
    """ONNX's Attention node cases (the onnx package's case code, run at its import), with why each is outside the
    description's attention (None where it is inside)."""
    try:
        onnx = frameworks.load("onnx")
        node_cases = importlib.import_module("onnx.backend.test.case.node")
        importlib.import_module("onnx.backend.test.case.node.attention")
    except Exception as e:  # noqa: BLE001 - no onnx, or no Attention cases in this onnx
        return [pytest.param(None, id="onnx-attention-unavailable", marks=pytest.mark.skip(reason=str(e)))]
    out, seen = [], set()
    for c in node_cases._NodeTestCases:
        g = c.model.graph
        if len(g.node) != 1 or g.node[0].op_type != "Attention" or not c.data_sets or c.name in seen:
            continue
        seen.add(c.name)
        node = g.node[0]
        a = {x.name: onnx.helper.get_attribute_value(x) for x in node.attribute}
        (ins, outs) = c.data_sets[0]
        q, k = ins[0], ins[1]
        named = list(node.input) + [""] * 7
        why = [w for w, hit in (
            ("past_key|past_value|nonpad", any(named[4:])),
            ("mask", bool(named[3]) and not np.all(ins[3] if ins[3].dtype == bool else ins[3] == 0)),  # all-attend: none
            ("attributes|softcap", bool(set(a) - KIND_ATTRS)),
            ("FLOAT16|BFLOAT16", q.dtype != np.float32),
            ("grouped-query", a.get("q_num_heads", 0) != a.get("kv_num_heads", 0) or q.ndim == 4 and q.shape[1] != k.shape[1]),
        ) if hit]  # fmt: skip
        out.append(pytest.param((c.name, node, a, ins, outs[0], why, list(c.model.opset_import)), id=c.name))
    return out


def _heads_last(a: np.ndarray) -> np.ndarray:
    return a if a.ndim == 3 else a.transpose(0, 2, 1, 3).reshape(a.shape[0], a.shape[2], -1)


def _case_graph(path, node, a: dict, ins: list, opsets: list) -> tuple[np.ndarray, int]:
    """One input X (B, Tk, eq + ek + ev) holding Q (rows padded to Tk with zeros), K and V side by side; 0/1 MatMuls
    pick each (split into heads by Reshape / Transpose for a 4-D case); the case's Attention node (its attributes,
    its mask padded to Tk rows, its past / nonpad inputs as constants) on them; the output 3-D (B, Tk, H dv)."""
    onnx = frameworks.load("onnx")
    h, nh = onnx.helper, onnx.numpy_helper
    q, k, v = ins[:3]
    hq = q.shape[1] if q.ndim == 4 else int(a["q_num_heads"])
    hk = k.shape[1] if k.ndim == 4 else int(a.get("kv_num_heads", hq))
    q3, k3, v3 = (_heads_last(x) for x in (q, k, v))
    b, tq, eq = q3.shape
    if tq > k3.shape[1]:
        pytest.skip(f"{tq} queries over {k3.shape[1]} keys (a decode step): one sequence's self-attention has not")
    tk, ek, ev = k3.shape[1], k3.shape[2], v3.shape[2]
    width = eq + ek + ev
    x = np.zeros((b, tk, width), q.dtype)
    x[:, :tq, :eq], x[:, :, eq:eq + ek], x[:, :, eq + ek:] = q3, k3, v3
    inits, nodes = [], []
    for name, start, n, heads in (("Q", 0, eq, hq), ("K", eq, ek, hk), ("V", eq + ek, ev, hk)):
        sel = np.zeros((width, n), q.dtype)
        sel[start:start + n] = np.identity(n)
        inits.append(nh.from_array(sel, f"S{name}"))
        nodes.append(h.make_node("MatMul", ["X", f"S{name}"], [f"{name}3"]))
        if q.ndim == 4:
            inits.append(nh.from_array(np.array([b, tk, heads, n // heads], np.int64), f"{name}_shape"))
            nodes.append(h.make_node("Reshape", [f"{name}3", f"{name}_shape"], [f"{name}r"]))
            nodes.append(h.make_node("Transpose", [f"{name}r"], [name], perm=[0, 2, 1, 3]))
        else:
            nodes.append(h.make_node("Identity", [f"{name}3"], [name]))
    extra, feeds = [], iter(ins[3:])  # the data of the node's inputs that are named, in order
    for j, t in enumerate(list(node.input)[3:], start=3):
        if not t:
            extra.append("")
            continue
        val = np.asarray(next(feeds))
        if j == 3 and val.ndim >= 2 and val.shape[-2] == tq and tq != tk:  # the mask's query rows, padded
            pad = [(0, 0)] * val.ndim
            pad[-2] = (0, tk - tq)
            val = np.pad(val, pad, constant_values=True if val.dtype == bool else 0)
        inits.append(nh.from_array(val, f"in{j}"))
        extra.append(f"in{j}")
    nodes.append(h.make_node("Attention", ["Q", "K", "V", *extra], ["Y"], **a))
    dv = (v.shape[-1] if v.ndim == 4 else ev // hk)
    if q.ndim == 4:
        inits.append(nh.from_array(np.array([b, tk, hq * dv], np.int64), "Y_shape"))
        nodes += [h.make_node("Transpose", ["Y"], ["Yt"], perm=[0, 2, 1, 3]), h.make_node("Reshape", ["Yt", "Y_shape"], ["out"])]
    else:
        nodes.append(h.make_node("Identity", ["Y"], ["out"]))
    elem = h.np_dtype_to_tensor_dtype(q.dtype)
    graph = h.make_graph(nodes, "case", [h.make_tensor_value_info("X", elem, x.shape)],
                         [h.make_tensor_value_info("out", elem, (b, tk, hq * dv))], inits)  # fmt: skip
    model = h.make_model(graph, opset_imports=opsets)
    model.ir_version = 10  # what ONNX Runtime 1.31 reads (onnx 1.23 writes IR 14)
    onnx.save(model, str(path))
    return x, tq


@pytest.mark.parametrize("case", _node_cases())
def test_onnx_attention_node_cases_through_the_importer(tmp_path, case):
    name, node, a, ins, want, why, opsets = case
    x, tq = _case_graph(tmp_path / f"{name}.onnx", node, a, ins, opsets)
    if why:  # refused, naming (one of) the reasons
        with pytest.raises(UnsupportedLayer, match="|".join(why)):
            onnx_import.load_file(tmp_path / f"{name}.onnx", None)
        return
    imported = onnx_import.load_file(tmp_path / f"{name}.onnx", None)
    m = imported.model
    (attn,) = [la for la in m.layers if la.kind == "multi_head_attention"]
    assert attn.options["causal"] == bool(a.get("is_causal", 0))
    expect = _heads_last(want).astype(np.float64)
    got = reference_forward(m.astype("float64"), x.astype(np.float64))[:, :tq]
    assert error_stats(got, expect).rel <= BAR, name
    assert error_stats(imported.forward(x)[:, :tq], expect).rel <= BAR, name  # ONNX Runtime's run of the graph


# --------------------------------------------------------------------------- refusals


def test_cross_attention_is_refused_naming_the_node(tmp_path):
    onnx = frameworks.load("onnx")
    h, nh = onnx.helper, onnx.numpy_helper
    g = np.random.default_rng(0)
    w = {n: nh.from_array(g.uniform(-0.5, 0.5, (8, 8)).astype(np.float32), n) for n in ("W", "Wq", "Wk", "Wv")}
    nodes = [h.make_node("MatMul", ["X", "W"], ["P"]), h.make_node("Tanh", ["P"], ["M"]),
             h.make_node("MatMul", ["X", "Wq"], ["Q"]), h.make_node("MatMul", ["M", "Wk"], ["K"]),
             h.make_node("MatMul", ["M", "Wv"], ["V"]),
             h.make_node("Attention", ["Q", "K", "V"], ["Y"], name="cross", q_num_heads=2, kv_num_heads=2)]  # fmt: skip
    graph = h.make_graph(nodes, "cross", [h.make_tensor_value_info("X", 1, (3, 5, 8))],
                         [h.make_tensor_value_info("Y", 1, (3, 5, 8))], list(w.values()))  # fmt: skip
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 23)])
    model.ir_version = 10
    onnx.save(model, str(tmp_path / "cross.onnx"))
    with pytest.raises(UnsupportedLayer, match="self-attention the importer does not read: .*cross attention"):
        onnx_import.load_file(tmp_path / "cross.onnx", None)


def test_a_mask_that_is_not_causal_is_refused_naming_why(tmp_path):
    onnx = frameworks.load("onnx")
    path = onnx_port.write(_round_model("sizes_causal_no_bias"), tmp_path / "m.onnx")[0]
    m = onnx.load(str(path))
    (init,) = [i for i in m.graph.initializer if onnx.numpy_helper.to_array(i).dtype == bool]
    keep = onnx.numpy_helper.to_array(init).copy()
    keep[3, 1] = False  # a key before the query hidden: not the causal mask
    init.CopyFrom(onnx.numpy_helper.from_array(keep, init.name))
    onnx.save(m, str(path))
    with pytest.raises(UnsupportedLayer, match="MatMul.*neither none nor causal"):
        onnx_import.load_file(path, None)


def test_the_node_cases_are_not_vacuous_and_the_kinds_matrix_says_converts():
    """At least the 16 cases onnx 1.23 ships inside the kind (3-D and 4-D, scaled, causal, value heads of another
    size, all-attend masks) import; the matrix's ONNX importer cell for the kind converts."""
    from impls import coverage

    cases = [p.values[0] for p in _node_cases() if p.values and p.values[0] is not None]
    assert len([c for c in cases if not c[5]]) >= 16 and len(cases) >= 50
    row = next(r for r in coverage.matrix() if r.kind == "multi_head_attention")
    assert row.cells["onnx importer"] == ("converts", "Attention")
