"""Issue 24's activations, from each source to each target, as a user runs them.

- Sources, each a user's file: a Keras functional model (Conv2D(activation="relu6" / "swish" / "hard_silu"),
  Dense(activation="gelu" / "hard_sigmoid"), ReLU(max_value=6), ReLU(max_value=3), LeakyReLU() (Keras 3's 0.3),
  Activation("leaky_relu") (keras.activations' 0.2), ReLU(negative_slope=0.1)); a torch module (nn.ReLU6,
  nn.Hardtanh(-1.5, 2), nn.Hardsigmoid, nn.Hardswish, nn.SiLU, nn.GELU() and GELU('tanh'), nn.LeakyReLU() (torch's
  0.01), F.leaky_relu(x, 0.2), torch.clamp(x, min=-1), x.clamp(0, 4)); that module exported by torch.onnx.export (Clip,
  HardSigmoid, HardSwish, Sigmoid + Mul, Gelu, LeakyRelu). Each imports with each convention's parameters stated,
  and its description's reference agrees with the source layer by layer.
- `nnparity port` of each to torch, Keras, ONNX and Flax, each loaded back by its own framework in a fresh
  interpreter that never imports nnparity, agreeing with the source at the float32 bar (the tanh GELU and a clip
  not from 0 are keras.ops nodes in the .keras file; a layer's activation= of the tanh GELU is refused, with why).
- Planted convention bugs, each caught: hard_sigmoid as 0.2 x + 0.5 where relu6(x + 3) / 6 is meant; the tanh GELU
  for the erf one (jax.nn.gelu's default in the Flax port, Keras' "gelu" read as approximate); a leaky slope default
  swapped (Keras' 0.3 read as torch's 0.01; ONNX's LeakyRelu default 0.01 as 0.3; ONNX's HardSigmoid default 0.2 as
  1/6); in the ports, Keras' LeakyReLU in float64 (TF rounds its alpha to float32), torch's nn.Hardsigmoid in float64
  (its backward multiplies by float32(1 / 6)), ONNX's Gelu with approximate="tanh" for gelu.
- ONNX's own node tests (HardSigmoid, HardSwish, LeakyRelu, Clip, Gelu, with their defaults) through the importer and
  every voice.
"""

from __future__ import annotations

import importlib
import json
import os
import runpy
import textwrap
from pathlib import Path

import numpy as np
import pytest

from impls import SHORT, unavailable_reason
from impls.contract.tolerance import error_stats, tolerance
from impls.importers import load
from impls.model import voices
from impls.model.compose import reference_forward, reference_outputs
from nnparity import cli
from tests.alone import run_alone
from tests.test_elementwise import LOADER, _canonical, _nchw
from verify.conftest import load_framework
from verify.headroom import check

BAR = tolerance("float32")

KERAS_NET = """
import keras

L = keras.layers
keras.utils.set_random_seed(0)
x = keras.Input((6, 5, 3))
y = L.Conv2D(4, 3, padding="same", activation="relu6", name="c_relu6")(x)
y = L.Conv2D(4, 3, padding="same", activation="swish", name="c_swish")(y)
y = L.DepthwiseConv2D(3, padding="same", activation="hard_silu", name="dw_hard_silu")(y)
y = L.Rescaling(4.0, name="spread")(y)
a = L.ReLU(max_value=6.0, name="relu_6")(y)
b = L.ReLU(max_value=3.0, name="relu_3")(y)
c = L.LeakyReLU(name="leaky_default")(y)
d = L.Activation("leaky_relu", name="leaky_activation")(y)
e = L.ReLU(negative_slope=0.1, name="relu_leaky")(y)
z = L.Concatenate(name="cat")([a, b, c, d, e])
z = L.Rescaling(40.0, name="gap_wide")(L.GlobalAveragePooling2D(name="gap")(z))
z = L.Dense(6, activation="gelu", name="d_gelu")(z)
model = keras.Model(x, L.Dense(3, activation="hard_sigmoid", name="out")(L.Rescaling(3.0, name="wide")(z)))
"""

TORCH_NET = """
import torch
import torch.nn.functional as F
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.relu6, self.hardtanh = nn.ReLU6(inplace=True), nn.Hardtanh(-1.5, 2.0)
        self.hsig, self.hswish, self.silu = nn.Hardsigmoid(), nn.Hardswish(), nn.SiLU()
        self.gelu, self.gelu_tanh, self.leaky = nn.GELU(), nn.GELU(approximate="tanh"), nn.LeakyReLU()
        self.fc = nn.Linear(4 * 10, 3)

    def forward(self, x):
        y = self.conv(x) * 4.0
        parts = [self.relu6(y + 0.0), self.hardtanh(y), self.hsig(y), self.hswish(y), self.silu(y), self.gelu(y),
                 self.gelu_tanh(y), self.leaky(y), F.leaky_relu(y, 0.2), torch.clamp(y, min=-1.0)]
        z = torch.cat([p.mean((2, 3)) for p in parts], 1)
        return self.fc(z).clamp(0.0, 4.0)


torch.manual_seed(0)
model = Net().eval()
"""

_MODELS_NEED = {
    "keras": {("relu6", ()), ("silu", ()), ("hard_swish", ()), ("gelu", ()), ("hard_sigmoid", ()),
              ("clip", (("max", 3.0), ("min", 0.0))), ("leaky_relu", (("negative_slope", 0.3),)),
              ("leaky_relu", (("negative_slope", 0.2),)), ("leaky_relu", (("negative_slope", 0.1),))},
    "torch": {("relu6", ()), ("clip", (("max", 2.0), ("min", -1.5))), ("hard_sigmoid", (("alpha", 1 / 6), ("beta", 0.5))),
              ("hard_swish", ()), ("silu", ()), ("gelu", ()), ("gelu_tanh", ()), ("leaky_relu", (("negative_slope", 0.01),)),
              ("leaky_relu", (("negative_slope", 0.2),)), ("clip", (("max", None), ("min", -1.0))),
              ("clip", (("max", 4.0), ("min", 0.0)))},
}  # fmt: skip


def _activations(m) -> set:
    """(name, its parameters) of every activation layer and every layer's activation=."""
    from impls.model.layers import spec_of

    out = set()
    for la in m.layers:
        opts = spec_of(la.kind).options(la.options)
        name = opts.get("activation", "linear")
        if name != "linear":
            params = tuple(sorted((k, v) for k, v in opts.items() if k != "activation")) if la.kind == "activation" else ()
            out.add((name, params))
    return out


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict:
    """name -> (spec, --input-shape or None, x in the source's layout, the source's own output there, Imported)."""
    torch = load_framework("torch")
    load_framework("keras"), load_framework("onnxruntime"), load_framework("flax")
    d = tmp_path_factory.mktemp("activations")
    (d / "keras_net.py").write_text(textwrap.dedent(KERAS_NET))
    (d / "torch_net.py").write_text(textwrap.dedent(TORCH_NET))
    g = np.random.default_rng(5)
    out = {}
    imported = load(f"{d / 'keras_net.py'}:model", (3, 6, 5, 3))
    x = g.uniform(-1, 1, (3, 6, 5, 3)).astype(np.float32)
    out["keras"] = (f"{d / 'keras_net.py'}:model", "3,6,5,3", x, imported.forward(x), imported)
    imported = load(f"{d / 'torch_net.py'}:model", (3, 3, 6, 5))
    net = runpy.run_path(str(d / "torch_net.py"))["model"]
    x = g.uniform(-1, 1, (3, 3, 6, 5)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    out["torch"] = (f"{d / 'torch_net.py'}:model", "3,3,6,5", x, want, imported)
    torch.onnx.export(net, torch.from_numpy(x), str(d / "torch_net.onnx"), dynamo=False, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})  # fmt: skip
    out["onnx"] = (str(d / "torch_net.onnx"), None, x, want, load(str(d / "torch_net.onnx"), None))
    return {"folder": d, **out}


@pytest.mark.parametrize("name", ["keras", "torch", "onnx"])
def test_each_source_imports_with_its_conventions_and_agrees_layer_by_layer(sources, name):
    _, _, x, want, imported = sources[name]
    m = imported.model
    need = _MODELS_NEED["torch" if name == "onnx" else name]
    got_acts = _activations(m)
    if name == "onnx":  # ONNX holds HardSigmoid's alpha and LeakyRelu's slope as float32 attributes
        need = {(n, tuple((k, None if v is None else float(np.float32(v))) for k, v in p)) for n, p in need}
    assert need <= got_acts, sorted(need - got_acts, key=str)
    xc = _canonical(name, x).astype(np.float64)
    got, ref = imported.forward(xc), reference_forward(m, xc)
    assert error_stats(got, ref).rel <= BAR
    assert error_stats(_nchw(got) if got.ndim == 4 else got, want).rel <= BAR  # the source's own output
    for i, (got, r) in enumerate(zip(imported.layer_outputs(xc), reference_outputs(m, xc), strict=True)):
        assert error_stats(got, r).rel <= BAR, f"{name}: {m.layers[i].label(i)}"


def test_an_erf_gelu_written_before_opset_20_imports_as_gelu(sources):
    """torch.onnx at opset 17 writes nn.GELU() as Div(x, sqrt 2), Erf, Add 1, Mul x, Mul 0.5: one gelu layer (and the
    tanh GELU as the Mul / Add / Tanh nodes it is, which import as they compute)."""
    torch = load_framework("torch")
    spec, _, x, want, _ = sources["torch"]
    net = runpy.run_path(spec.rsplit(":", 1)[0])["model"]
    path = sources["folder"] / "torch_net_17.onnx"
    torch.onnx.export(net, torch.from_numpy(x), str(path), dynamo=False, opset_version=17, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})  # fmt: skip
    ops = {n.op_type for n in load_framework("onnx").load(str(path)).graph.node}
    assert "Erf" in ops and "Gelu" not in ops
    imported = load(str(path), None)
    m = imported.model
    assert ("gelu", ()) in _activations(m) and ("gelu_tanh", ()) not in _activations(m)
    xc = _canonical("onnx", x).astype(np.float64)
    assert error_stats(imported.forward(xc), want).rel <= BAR
    for i, (got, r) in enumerate(zip(imported.layer_outputs(xc), reference_outputs(m, xc), strict=True)):
        assert error_stats(got, r).rel <= BAR, m.layers[i].label(i)


def test_ports_load_with_their_own_frameworks_and_agree_with_the_sources(sources, capsys):
    d = sources["folder"]
    ports, cwd = [], Path.cwd()
    try:
        os.chdir(d)
        for name in ("keras", "torch", "onnx"):
            spec, shape, x, want, _ = sources[name]
            np.save(f"{name}_x.npy", x)
            np.save(f"{name}_want.npy", np.asarray(want, np.float32))
            for target, path in (("torch", f"{name}_torch"), ("keras", f"{name}.keras"), ("onnx", f"{name}.onnx"),
                                 ("flax", f"{name}_flax")):  # fmt: skip
                if name == target:
                    continue
                argv = ["port", spec, "--to", target, "-o", path] + (["--input-shape", shape] if shape else [])
                assert cli.main(argv) == 0, (argv, capsys.readouterr().err)
                ports.append((name, target, path))
        Path("ports.json").write_text(json.dumps(ports))
    finally:
        os.chdir(cwd)
    got = run_alone(LOADER, d)
    assert len(got) == len(ports) == 9 and all(err <= BAR for err in got.values()), got


def test_keras_writes_a_tanh_gelu_as_an_ops_node_and_refuses_float64_gelus_with_why(tmp_path):
    from impls.model import seeded
    from impls.ports.keras_port import assembly

    m = seeded.chain("d", (4,), [("dense", "d", {"units": 3, "activation": "gelu_tanh"})], seed=1, batch=3)
    assert voices.refusal("keras", m, "float32") is None and "0.044715" in voices.refusal("keras", m, "float64")
    net = assembly.keras_model(m, "float32")
    assert "'class_name': 'Gelu'" in str(net.get_config())  # keras.ops.gelu's node after the Dense
    x = np.random.default_rng(0).uniform(-3, 3, (3, 4))
    got = voices.build("keras", m, "float32").forward(x.astype(np.float32))
    assert error_stats(got, reference_forward(m, x)).rel <= BAR
    net.save(str(tmp_path / "d.keras"))
    again = load_framework("keras").saving.load_model(str(tmp_path / "d.keras"), safe_mode=True)
    assert error_stats(np.asarray(again(x.astype(np.float32))), reference_forward(m, x)).rel <= BAR
    m = seeded.chain("g", (4,), [("dense", "d", {"units": 3}), ("activation", "g", {"activation": "gelu"})], seed=1, batch=3)
    assert voices.refusal("keras", m, "float32") is None and "erfc" in voices.refusal("keras", m, "float64")
    assert "Erf" in voices.refusal("onnxruntime", m, "float64")


# --------------------------------------------------------------------------- planted convention bugs


def _caught(imported, x) -> bool:
    """Whether the description's reference and the source disagree beyond the float32 bar at some layer."""
    pairs = zip(imported.layer_outputs(x), reference_outputs(imported.model, x), strict=True)
    return max(error_stats(got, ref).rel for got, ref in pairs) > BAR


def _reimport(sources, name):
    spec, _, x, _, _ = sources[name]
    shape = {"keras": (3, 6, 5, 3), "torch": (3, 3, 6, 5), "onnx": None}[name]
    return load(spec, shape), _canonical(name, x).astype(np.float64)


@pytest.mark.parametrize("name", ["keras", "torch"])
def test_a_planted_hard_sigmoid_of_keras_2_is_caught(sources, monkeypatch, name):
    """hard_sigmoid as Keras 2's 0.2 x + 0.5 where torch's and Keras 3's relu6(x + 3) / 6 is meant."""
    from impls.model.layers import activation

    imported, x = _reimport(sources, name)
    assert not _caught(imported, x)
    monkeypatch.setitem(activation.PARAMS, "hard_sigmoid", {"alpha": 0.2, "beta": 0.5})
    assert _caught(imported, x)


def test_a_planted_tanh_gelu_for_erf_is_caught_in_the_keras_importer_and_the_flax_port(sources, monkeypatch):
    from impls.importers.keras_import import context
    from impls.ports.flax_port import emit

    imported, x = _reimport(sources, "keras")
    monkeypatch.setitem(context.KERAS_ACTIVATIONS, "gelu", "gelu_tanh")  # Keras' "gelu" read as keras.ops.gelu's default
    bugged, _ = _reimport(sources, "keras")
    assert not _caught(imported, x) and _caught(bugged, x)
    m = imported.model
    ok = voices.build("flax", m, "float32").forward(x.astype(np.float32))
    assert error_stats(ok, reference_forward(m, x)).rel <= BAR
    monkeypatch.setitem(emit._ACTIVATION, "gelu", "jax.nn.gelu(x)")  # jax.nn.gelu's default: approximate=True
    bad = voices.build("flax", m, "float32").forward(x.astype(np.float32))
    assert error_stats(bad, reference_forward(m, x)).rel > BAR


def test_a_planted_leaky_slope_default_swap_is_caught(sources, monkeypatch):
    """Keras 3's LeakyReLU() is 0.3; read with torch's 0.01 the description disagrees with the source."""
    from impls.importers.keras_import import activation as keras_activation

    imported, x = _reimport(sources, "keras")
    real = keras_activation._leaky
    monkeypatch.setattr(keras_activation, "_leaky", lambda c, slope: real(c, 0.01 if slope == 0.3 else slope))
    bugged, _ = _reimport(sources, "keras")
    assert not _caught(imported, x) and _caught(bugged, x)


# --------------------------------------------------------------------------- ONNX's own node tests

NODE_OPS = ("hardsigmoid", "hardswish", "leakyrelu", "clip", "gelu")


def _node_cases() -> list:
    """ONNX's node cases of the five operators (float32, batch-first: rank >= 2), written by the onnx package's own
    case code; the expanded HardSwish (HardSigmoid then Mul) too."""
    load_framework("onnx")
    node_cases = importlib.import_module("onnx.backend.test.case.node")
    for m in NODE_OPS:
        importlib.import_module(f"onnx.backend.test.case.node.{m}")
    cases = [c for c in node_cases._NodeTestCases if c.model and c.data_sets
             and c.model.graph.node[-1].op_type.lower() in (*NODE_OPS, "mul")
             and (not c.name.endswith("expanded") or c.name == "test_hardswish_expanded")
             and c.name.startswith(tuple(f"test_{m}" for m in NODE_OPS))]  # fmt: skip
    return [pytest.param(c, id=c.name) for c in cases]


def _one_input(case, tmp_path):
    """The case's graph with its extra inputs (Clip's min and max) made initializers, or None with why."""
    onnx = load_framework("onnx")
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    ins, (want,) = case.data_sets[0]
    x = ins[0]
    if x.dtype != np.float32 or x.ndim < 2:
        return None, f"{x.dtype} input of shape {x.shape}: the description takes float inputs, batch first"
    g = case.model.graph
    inits = [numpy_helper.from_array(a, g.input[k].name) for k, a in enumerate(ins) if k > 0]
    graph = helper.make_graph(list(g.node), case.name, [g.input[0]], [g.output[0]], [*g.initializer, *inits])
    m = helper.make_model(graph, opset_imports=list(case.model.opset_import))
    m.ir_version = min(case.model.ir_version, 8)
    path = tmp_path / f"{case.name}.onnx"
    onnx.save(m, str(path))
    return (path, x, want), None


_NODE_KINDS = {"hardsigmoid": "hard_sigmoid", "hardswish": "hard_swish", "leakyrelu": "leaky_relu", "gelu": "gelu"}


@pytest.mark.parametrize("case", _node_cases())
@pytest.mark.parametrize("voice", voices.VOICES)
def test_onnx_node_cases_are_reproduced_by_every_voice(case, voice, tmp_path):
    made, why = _one_input(case, tmp_path)
    if made is None:
        pytest.skip(why)
    path, x, want = made
    from impls.importers import onnx_import

    imported = onnx_import.load_file(path, None)
    m = imported.model
    assert {la.kind for la in m.layers} <= {"activation", "multiply"}
    unavailable = unavailable_reason(voice) or voices.refusal(voice, m, "float32")
    if unavailable:
        pytest.skip(f"{voice}: {unavailable}")
    got = voices.build(voice, m, "float32").forward(x)
    check(got, want.astype(np.float64), "float32", voice, what=f"{case.name} {SHORT[voice]}")


@pytest.mark.parametrize("case_name, planted", [("test_hardsigmoid_default", ("alpha", 1 / 6)),
                                                ("test_leakyrelu_default", ("alpha", 0.3))])  # fmt: skip
def test_a_planted_onnx_default_is_caught_by_its_node_case(monkeypatch, tmp_path, case_name, planted):
    """ONNX's HardSigmoid defaults to alpha 0.2 (not torch's 1/6), LeakyRelu to 0.01 (not Keras' 0.3): an importer
    that fills the other default disagrees with ONNX's own expected output."""
    from impls.importers import onnx_import
    from impls.importers.onnx_import import activation as onnx_activation

    (case,) = [p.values[0] for p in _node_cases() if p.id == case_name]
    (path, x, want), _ = _one_input(case, tmp_path)
    assert not onnx_activation.attrs(case.model.graph.node[0])  # the default is not written
    ok = reference_forward(onnx_import.load_file(path, None).model, x.astype(np.float64))
    assert error_stats(ok, want).rel <= BAR
    real = onnx_activation.attrs
    monkeypatch.setattr(onnx_activation, "attrs", lambda node: {planted[0]: planted[1], **real(node)})
    bad = reference_forward(onnx_import.load_file(path, None).model, x.astype(np.float64))
    assert error_stats(bad, want).rel > BAR


def test_an_erf_that_is_no_gelu_and_a_keras_threshold_are_refused_naming_them(tmp_path):
    from impls.importers import UnsupportedLayer

    onnx = load_framework("onnx")
    helper, T = onnx.helper, onnx.TensorProto
    graph = helper.make_graph([helper.make_node("Erf", ["x"], ["y"], name="/e/Erf")], "erf",
                              [helper.make_tensor_value_info("x", T.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("y", T.FLOAT, ["N", 4])])  # fmt: skip
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(tmp_path / "erf.onnx"))
    with pytest.raises(UnsupportedLayer, match=r"'/e/Erf' \(Erf\) is not the erf of x / sqrt\(2\)"):
        load(str(tmp_path / "erf.onnx"), (3, 4))
    keras = load_framework("keras")
    from impls.importers import keras_import

    x = keras.Input((4,))
    net = keras.Model(x, keras.layers.ReLU(max_value=6.0, negative_slope=0.1, name="capped_leaky")(x))
    with pytest.raises(UnsupportedLayer, match=r"'capped_leaky'.*slope together with a max_value"):
        keras_import.from_model(net, (3, 4), "net.py:net")


@pytest.mark.parametrize("opset, bounds, want", [(10, {"min": 0.0, "max": 6.0}, {"activation": "relu6"}),
                                                 (10, {"max": 2.5}, {"activation": "clip", "min": None, "max": 2.5}),
                                                 (13, (0.0, 6.0), {"activation": "relu6"}),
                                                 (13, (-1.0, None), {"activation": "clip", "min": -1.0, "max": None})])  # fmt: skip
def test_onnx_clip_bounds_as_attributes_before_opset_11_and_inputs_since(tmp_path, opset, bounds, want):
    onnx = load_framework("onnx")
    helper, numpy_helper, T = onnx.helper, onnx.numpy_helper, onnx.TensorProto
    inits, ins = [], ["x"]
    if isinstance(bounds, dict):
        node = helper.make_node("Clip", ins, ["y"], name="/c/Clip", **bounds)
    else:
        for k, b in zip(("lo", "hi"), bounds, strict=True):
            ins.append("" if b is None else k)
            if b is not None:
                inits.append(numpy_helper.from_array(np.asarray(b, np.float32), k))
        while ins[-1] == "":  # an absent last input is left out, an absent min is ""
            ins.pop()
        node = helper.make_node("Clip", ins, ["y"], name="/c/Clip")
    graph = helper.make_graph([node], "clip", [helper.make_tensor_value_info("x", T.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("y", T.FLOAT, ["N", 4])], inits)  # fmt: skip
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.save(m, str(tmp_path / "clip.onnx"))
    imported = load(str(tmp_path / "clip.onnx"), (3, 4))
    assert [la.options for la in imported.model.layers] == [want]
    x = np.random.default_rng(0).uniform(-8, 8, (3, 4)).astype(np.float32)
    assert error_stats(imported.forward(x), reference_forward(imported.model, x.astype(np.float64))).rel == 0.0


# --------------------------------------------------------------------------- planted port bugs (float64 conventions)


def _small(*acts: dict):
    from impls.model import seeded

    specs = [("rescale", "wide", {"scale": 4.0, "offset": 0.5}), ("dense", "d", {"units": 4})]
    specs += [("activation", f"a{i}", a) for i, a in enumerate(acts)]
    return seeded.chain("small", (4,), specs, seed=2, batch=3)


def _worst(voice: str, m, dtype: str) -> float:
    """The larger of the forward's and the input gradient's error against the reference."""
    from impls.model.compose import reference_vjp

    x = np.random.default_rng(0).uniform(-1, 1, (3, 4))
    dy = np.random.default_rng(1).uniform(-1, 1, (3, 4))
    b = voices.build(voice, m, dtype)
    fwd = error_stats(b.forward(x.astype(dtype)), reference_forward(m, x)).rel
    return max(fwd, error_stats(b.vjp(x.astype(dtype), dy.astype(dtype))[0], reference_vjp(m, x, dy)[0]).rel)


def test_a_planted_float32_slope_in_the_keras_port_is_caught(monkeypatch):
    """TF's LeakyRelu rounds its alpha to float32: the float64 port writes ReLU(negative_slope, max_value=inf)."""
    from impls.ports.keras_port import activation as keras_activation

    m = _small({"activation": "leaky_relu", "negative_slope": 0.1})
    assert _worst("keras", m, "float64") <= tolerance("float64")
    monkeypatch.setattr(keras_activation, "leaky_relu", lambda slope, at: keras_activation.keras.layers.LeakyReLU(
        negative_slope=slope, dtype=at.dt, name=at.name))
    assert _worst("keras", m, "float64") > tolerance("float64")


def test_a_planted_nn_hardsigmoid_in_the_torch_port_is_caught_in_float64(monkeypatch):
    """nn.Hardsigmoid's float64 backward multiplies by float32(1 / 6): the port writes F.relu6(x + 3) / 6."""
    from impls.ports.torch_port import activation as torch_activation

    m = _small({"activation": "hard_sigmoid"})
    assert _worst("torch_nn", m, "float64") <= tolerance("float64")
    real = torch_activation._line
    monkeypatch.setattr(torch_activation, "_line", lambda opts: "F.hardsigmoid(x)" if opts["activation"] == "hard_sigmoid"
                        else real(opts))  # fmt: skip
    assert _worst("torch_nn", m, "float64") > tolerance("float64")


def test_a_planted_tanh_gelu_in_the_onnx_port_is_caught(monkeypatch):
    """Gelu's approximate attribute: "none" (erf) for gelu; "tanh" there is off by up to 4.7e-4 (forward only: ONNX
    Runtime has no gradients)."""
    from impls.ports.onnx_port import builder

    m = _small({"activation": "gelu"})
    x = np.random.default_rng(0).uniform(-1, 1, (3, 4))
    ok = voices.build("onnxruntime", m, "float32").forward(x.astype(np.float32))
    assert error_stats(ok, reference_forward(m, x)).rel <= BAR
    real = builder._Graph.apply
    monkeypatch.setattr(builder._Graph, "apply", lambda g, op, *ins, **attrs: real(
        g, op, *ins, **({**attrs, "approximate": "tanh"} if op == "Gelu" else attrs)))
    bad = voices.build("onnxruntime", m, "float32").forward(x.astype(np.float32))
    assert error_stats(bad, reference_forward(m, x)).rel > BAR


def test_a_float64_keras_source_states_tfs_float32_constants():
    """A float64 Keras LeakyReLU(0.1) computes with float32(0.1) (TF's op attribute): the description's slope is that,
    and the source agrees with the reference at the float64 bar; a float64 gelu is noted (tf.nn.gelu's float32 cast)."""
    keras = load_framework("keras")
    from impls.importers import keras_import

    x = keras.Input((4,), dtype="float64")
    y = keras.layers.LeakyReLU(negative_slope=0.1, dtype="float64", name="leaky")(
        keras.layers.Dense(4, dtype="float64", name="d")(x))
    y = keras.layers.Dense(3, activation="gelu", dtype="float64", name="g")(y)
    imported = keras_import.from_model(keras.Model(x, y), (3, 4), "net.py:net")
    leaky = imported.model.layers[1]
    assert leaky.options["negative_slope"] == float(np.float32(0.1)) != 0.1
    assert any("'leaky'" in n and "float32" in n for n in imported.notes)
    assert any("'g'" in n and "1 / sqrt 2" in n for n in imported.notes)
    xs = np.random.default_rng(0).uniform(-4, 4, (3, 4))
    got, ref = imported.layer_outputs(xs)[1], reference_outputs(imported.model, xs)[1]
    assert error_stats(got, ref).rel <= tolerance("float64")
