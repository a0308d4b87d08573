"""Issue 24's element-wise kinds and constants, from each source to each target, as a user runs them.

- Sources, each a user's file: a Keras functional model (Rescaling, Normalization, a nested Sequential, the raw ops
  of `(g + 3.0) * (1.0 / 6.0)`, `y + z`, `z * y`, `2 - z`, `z / 4`, a broadcast Multiply gate, keras.applications'
  LayerScale and StochasticDepth); a torch module (a normalisation by (3, 1, 1) buffers, x / 255, a (B, C, 1, 1)
  gate times its map, ConvNeXt's (C, 1, 1) layer-scale parameter, torchvision's StochasticDepth, 1 - z * z); that
  module exported to ONNX by torch.onnx.export; and an ONNX graph of a GlobalAveragePool gate, a per-channel Mul and
  a three-way Sum. Each imports, its description's reference agrees with the source, layer by layer.
- `nnparity port` of each to torch, Keras, ONNX and Flax, each loaded back by its own framework in a fresh
  interpreter that never imports nnparity, agreeing with the source at the float32 bar.
- Planted convention bugs, each caught: Keras' Normalization as (x - mean) / sqrt(variance + eps) or without the max
  with epsilon; a Rescaling's scale and offset swapped; the torch port's layer scale broadcast along the wrong axis
  (torch's (C, 1, 1) written as the canonical (C,), which torch broadcasts along W).
- What has no kind is refused naming the node or layer.
"""

from __future__ import annotations

import json
import os
import runpy
import textwrap
from pathlib import Path

import numpy as np
import pytest

from impls.contract.tolerance import error_stats, tolerance
from impls.importers import UnsupportedLayer, load
from impls.model import seeded, voices
from impls.model.compose import reference_forward, reference_outputs
from nnparity import cli
from tests.alone import run_alone
from verify.conftest import load_framework

BAR = tolerance("float32")

KERAS_NET = """
import keras
from keras.src.applications.convnext import LayerScale, StochasticDepth

L = keras.layers
keras.utils.set_random_seed(0)
x = keras.Input((6, 5, 3))
y = L.Rescaling(1.0 / 127.5, offset=-1.0, name="rescaling")(x)
y = L.Normalization(mean=[0.1, -0.2, 0.3], variance=[0.25, 4.0, 1.0], name="normalization")(y)
y = keras.Sequential([L.Conv2D(4, 2, name="stem_conv"), L.LayerNormalization(name="stem_ln")], name="stem")(y)
g = L.Reshape((1, 1, 4), name="se_reshape")(L.GlobalAveragePooling2D(name="se_gap")(y))
g = L.Activation("sigmoid", name="se_gate")(L.Conv2D(4, 1, name="se_conv")(g))
g = (g + 3.0) * (1.0 / 6.0)
z = L.Multiply(name="se_mul")([y, g])
z = LayerScale(0.5, 4, name="layer_scale")(z)
z = StochasticDepth(0.2, name="stochastic_depth")(z)
z = y + z
z = z * y
z = 2 - z
z = z / 4
model = keras.Model(x, L.Dense(3, name="out")(L.Flatten(name="flat")(z)))
"""

TORCH_NET = """
import torch
from torch import nn
from torchvision.ops import StochasticDepth


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1))
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.squeeze = nn.Conv2d(4, 4, kernel_size=(6, 5))  # (B, 4, 1, 1)
        self.layer_scale = nn.Parameter(torch.linspace(0.5, 1.5, 4).view(4, 1, 1))
        self.stochastic_depth = StochasticDepth(0.1, "row")
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        x = (x / 255 - self.mean) / self.std
        y = self.conv(x)
        g = torch.sigmoid(self.squeeze(y)) * (1 / 6) + 0.5
        z = self.stochastic_depth(self.layer_scale * (g * y)) + y
        z = 1 - z * z
        return self.fc(z.mean((2, 3)))


torch.manual_seed(0)
model = Net().eval()
"""

LOADER = r"""
import importlib.util, json, sys
import numpy as np

def module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    m = importlib.util.module_from_spec(spec)
    sys.modules[name] = m
    spec.loader.exec_module(m)
    return m

def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b))) if a.shape == b.shape else float("inf")

import keras, onnxruntime as ort, torch
out = {}
for name, target, path in json.load(open("ports.json")):
    x, want = np.load(f"{name}_x.npy"), np.load(f"{name}_want.npy")
    if target == "torch":
        with torch.no_grad():
            y = module(f"{path}/model.py", f"{name}_torch").load()(torch.from_numpy(x)).numpy()
    elif target == "keras":
        y = keras.saving.load_model(path, safe_mode=True)(x, training=False)
    elif target == "onnx":
        s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        y = s.run(None, {s.get_inputs()[0].name: x})[0]
    else:
        flax_module, variables = module(f"{path}/model.py", f"{name}_flax").load()
        y = flax_module.apply(variables, x)
    out[f"{name} {target}"] = rel(y, want)
out["nnparity loaded"] = sorted(m for m in sys.modules if m.split(".")[0] in ("impls", "nnparity"))
print(json.dumps(out))
"""


def _onnx_sum_graph(path: Path) -> Path:
    """A GlobalAveragePool gate (B, C, 1, 1) times its map, a per-channel Mul by an initializer, a three-way Sum."""
    onnx = load_framework("onnx")
    helper, numpy_helper, T = onnx.helper, onnx.numpy_helper, onnx.TensorProto
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["g"], name="/gap/GlobalAveragePool"),
             helper.make_node("Sigmoid", ["g"], ["s"], name="/gate/Sigmoid"),
             helper.make_node("Mul", ["s", "x"], ["m"], name="/se/Mul"),
             helper.make_node("Mul", ["m", "gamma"], ["y"], name="/ls/Mul"),
             helper.make_node("Sum", ["y", "x", "m"], ["z"], name="/sum/Sum")]  # fmt: skip
    gamma = numpy_helper.from_array(np.arange(1, 5, dtype=np.float32).reshape(4, 1, 1), "gamma")
    graph = helper.make_graph(nodes, "sum", [helper.make_tensor_value_info("x", T.FLOAT, ["N", 4, 5, 6])],
                              [helper.make_tensor_value_info("z", T.FLOAT, ["N", 4, 5, 6])], [gamma])  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict:
    """name -> (spec, --input-shape or None, x in the source's layout, the source's own output there, Imported)."""
    torch = load_framework("torch")
    load_framework("keras"), load_framework("onnxruntime"), load_framework("flax"), load_framework("torchvision")
    d = tmp_path_factory.mktemp("elementwise")
    (d / "keras_net.py").write_text(textwrap.dedent(KERAS_NET))
    (d / "torch_net.py").write_text(textwrap.dedent(TORCH_NET))
    g = np.random.default_rng(3)
    out = {}
    imported = load(f"{d / 'keras_net.py'}:model", (3, 6, 5, 3))
    x = g.uniform(0, 255, (3, 6, 5, 3)).astype(np.float32)
    out["keras"] = (f"{d / 'keras_net.py'}:model", "3,6,5,3", x, imported.forward(x), imported)
    imported = load(f"{d / 'torch_net.py'}:model", (3, 3, 6, 5))
    net = runpy.run_path(str(d / "torch_net.py"))["model"]
    x = g.uniform(0, 255, (3, 3, 6, 5)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    out["torch"] = (f"{d / 'torch_net.py'}:model", "3,3,6,5", x, want, imported)
    torch.onnx.export(net, torch.from_numpy(x), str(d / "torch_net.onnx"), dynamo=False, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})  # fmt: skip
    out["onnx"] = (str(d / "torch_net.onnx"), None, x, want, load(str(d / "torch_net.onnx"), None))
    imported = load(str(_onnx_sum_graph(d / "sum.onnx")), (3, 4, 5, 6))
    x = g.uniform(-1, 1, (3, 4, 5, 6)).astype(np.float32)
    out["sum"] = (str(d / "sum.onnx"), "3,4,5,6", x, _nchw(imported.forward(_nhwc(x))), imported)
    return {"folder": d, **out}


def _nhwc(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(x, (0, 2, 3, 1)))


def _nchw(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2)))


def _canonical(name: str, x: np.ndarray) -> np.ndarray:
    return x if name == "keras" else _nhwc(x)


@pytest.mark.parametrize("name, kinds", [
    ("keras", {"rescale", "multiply", "layer_scale", "stochastic_depth", "add", "conv2d", "layer_norm"}),
    ("torch", {"rescale", "multiply", "layer_scale", "stochastic_depth", "add"}),
    ("onnx", {"rescale", "multiply", "layer_scale", "add"}),
    ("sum", {"multiply", "layer_scale", "add", "reshape"}),
])  # fmt: skip
def test_each_source_imports_and_its_description_agrees_layer_by_layer(sources, name, kinds):
    _, _, x, want, imported = sources[name]
    m = imported.model
    assert kinds <= {la.kind for la in m.layers}, [la.kind for la in m.layers]
    xc = _canonical(name, x).astype(np.float64)
    got, ref = imported.forward(xc), reference_forward(m, xc)
    assert error_stats(got, ref).rel <= BAR
    assert error_stats(_nchw(got) if got.ndim == 4 else got, want).rel <= BAR  # the source's own output
    for i, (got, r) in enumerate(zip(imported.layer_outputs(xc), reference_outputs(m, xc), strict=True)):
        assert error_stats(got, r).rel <= BAR, f"{name}: {m.layers[i].label(i)}"
    if name == "torch":
        by = {la.name: la for la in m.layers}
        assert by["layer_scale"].weights["gamma"].shape == (4,) and by["stochastic_depth"].options == {"rate": 0.1,
                                                                                                      "mode": "row"}
        assert m.layers[0].kind == "rescale" and m.layers[0].options["scale"] == pytest.approx(1 / 255)
    if name == "keras":
        assert "stem_conv" in {la.name for la in m.layers}  # the nested Sequential's layers, flattened in place


def test_ports_load_with_their_own_frameworks_and_agree_with_the_sources(sources, capsys):
    d = sources["folder"]
    ports, cwd = [], Path.cwd()
    try:
        os.chdir(d)
        for name in ("keras", "torch", "onnx", "sum"):
            spec, shape, x, want, _ = sources[name]
            np.save(f"{name}_x.npy", x)
            np.save(f"{name}_want.npy", np.asarray(want, np.float32))
            for target, path in (("torch", f"{name}_torch"), ("keras", f"{name}.keras"), ("onnx", f"{name}.onnx"),
                                 ("flax", f"{name}_flax")):  # fmt: skip
                if name in ("onnx", "sum") and target == "onnx":
                    continue
                argv = ["port", spec, "--to", target, "-o", path] + (["--input-shape", shape] if shape else [])
                assert cli.main(argv) == 0, (argv, capsys.readouterr().err)
                ports.append((name, target, path))
        Path("ports.json").write_text(json.dumps(ports))
    finally:
        os.chdir(cwd)
    got = run_alone(LOADER, d)
    assert len(got) == len(ports) and all(err <= BAR for err in got.values()), got


# --------------------------------------------------------------------------- planted convention bugs


def _caught(imported, x) -> bool:
    """Whether the description's reference and the source disagree beyond the float32 bar."""
    return error_stats(imported.forward(x), reference_forward(imported.model, x)).rel > BAR


def _keras_constants(layer):
    keras = load_framework("keras")
    x = keras.Input((4,))
    from impls.importers import keras_import

    return keras_import.from_model(keras.Model(x, keras.layers.Dense(2, name="d")(layer(x))), (3, 4), "net.py:net")


@pytest.mark.parametrize("bug", ["sqrt(variance + eps)", "no max with epsilon"])
def test_a_planted_normalization_formula_is_caught(monkeypatch, bug):
    """Keras divides by max(sqrt(variance), epsilon): a channel of variance 1e-16 is divided by 1e-7. Written as
    sqrt(variance + eps) (3.2e-4) or sqrt(variance) (1e-8), that channel comes out thousands of times off."""
    from impls.importers.keras_import import elementwise

    keras = load_framework("keras")
    layer = keras.layers.Normalization(mean=[0.1, 0.2, -0.3, 0.0], variance=[0.25, 1e-16, 4.0, 1.0], name="norm")
    x = np.random.default_rng(4).uniform(-1, 1, (3, 4))
    assert not _caught(_keras_constants(layer), x)
    if bug == "sqrt(variance + eps)":
        planted = lambda mean, var, eps, invert: (1 / np.sqrt(var + eps), -mean / np.sqrt(var + eps))
    else:
        planted = lambda mean, var, eps, invert: (1 / np.sqrt(var), -mean / np.sqrt(var))
    monkeypatch.setattr(elementwise, "normalization", planted)
    assert _caught(_keras_constants(layer), x)


def test_a_planted_swap_of_scale_and_offset_is_caught(monkeypatch):
    from impls.importers.keras_import import elementwise

    keras = load_framework("keras")
    layer = keras.layers.Rescaling(0.5, offset=[2.0, -1.0, 0.5, 3.0], name="rescaling")
    x = np.random.default_rng(5).uniform(-1, 1, (3, 4))
    assert not _caught(_keras_constants(layer), x)
    monkeypatch.setattr(elementwise, "rescaling", lambda la: (la.offset, la.scale))
    assert _caught(_keras_constants(layer), x)


def test_a_planted_layer_scale_on_the_wrong_axis_is_caught(monkeypatch):
    """torch holds a map NCHW: the port's gamma must be (C, 1, 1). Written as the canonical (C,), torch broadcasts it
    along W (here W = C, so nothing fails to run: the numbers are wrong)."""
    from impls.ports.torch_port import elementwise

    load_framework("torch")
    m = seeded.chain("ls", (4, 4, 4), [("conv2d", "c", {"filters": 4, "kernel_size": [1, 1]}),
                                       ("layer_scale", "ls", {})], seed=3, boundary="channels_first")  # fmt: skip
    x = np.random.default_rng(6).uniform(-1, 1, (3, 4, 4, 4))
    ref = reference_forward(m, x)
    assert error_stats(voices.build("torch_nn", m, "float64").forward(x), ref).rel <= tolerance("float64")
    monkeypatch.setattr(elementwise, "channel_shape", lambda kind, rank, c: (c,))
    assert error_stats(voices.build("torch_nn", m, "float64").forward(x), ref).rel > BAR


# --------------------------------------------------------------------------- refusals and masks


TORCH_REFUSED = {  # what forward computes -> (the node refused, words of the reason)
    "a reciprocal": (lambda m, x: 1.0 / m.torch.relu(x), "truediv", "reciprocal"),
    "a trainable offset": (lambda m, x: x + m.p, "add", "trainable"),
    "a trainable scalar": (lambda m, x: x * m.s, "mul", "one trainable number for 4 channels"),
    "along the width": (lambda m, x: x * m.w, "mul", "not its channels"),
    "x / y": (lambda m, x: x / m.torch.relu(x), "truediv", "add (x + y), multiply (x * y)"),
}


@pytest.mark.parametrize("case", list(TORCH_REFUSED))
def test_what_has_no_kind_is_refused_naming_the_node(case):
    torch = load_framework("torch")
    from impls.importers import torch_import

    fn, node, words = TORCH_REFUSED[case]

    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.torch = torch
            self.p = torch.nn.Parameter(torch.ones(4, 1, 1))
            self.s = torch.nn.Parameter(torch.ones(1))
            self.register_buffer("w", torch.arange(1.0, 6.0))

        def forward(self, x):
            return fn(self, x)

    with pytest.raises(UnsupportedLayer) as e:
        torch_import.from_module(M(), (3, 4, 3, 5), "net.py:model")
    msg = str(e.value)
    assert f"node {node!r}" in msg and words in msg, msg


def test_keras_refuses_a_difference_of_tensors_a_normalization_over_several_axes_and_another_raw_op():
    keras = load_framework("keras")
    from impls.importers import keras_import

    L = keras.layers
    x = keras.Input((3, 4))
    for y, words in ((x - L.Dense(4, name="d")(x), "subtracts two tensors"),
                     (L.Normalization(axis=(1, 2), mean=np.zeros((3, 4)), variance=np.ones((3, 4)), name="n")(x),
                      "other than the last"),
                     (keras.ops.exp(x), r"keras.src.ops.numpy.Exp \(a raw keras.ops call in the graph\) is not supported")):  # fmt: skip
        with pytest.raises(UnsupportedLayer, match=words):
            keras_import.from_model(keras.Model(x, y), (2, 3, 4), "net.py:net")


@pytest.mark.parametrize("layer", ["invert", "one mean for every channel"])
def test_keras_normalization_inverted_and_scalar(layer):
    """invert=True is mean + x * max(sqrt(variance), epsilon); axis=None one mean and variance for every value."""
    keras = load_framework("keras")
    N = keras.layers.Normalization
    made = N(mean=[0.5, -1.0, 2.0, 0.0], variance=[4.0, 0.25, 1e-16, 9.0], invert=True, name="n") if layer == "invert" \
        else N(axis=None, mean=0.5, variance=2.0, name="n")  # fmt: skip
    imported = _keras_constants(made)
    assert imported.model.layers[0].kind == "rescale"
    assert not _caught(imported, np.random.default_rng(7).uniform(-1, 1, (3, 4)))


def test_a_padding_mask_passes_a_rescaling_to_the_lstm():
    """Embedding(mask_zero) -> Rescaling -> LSTM: Keras carries the mask through Rescaling (supports_masking), and
    the description's rescale keeps it (KEEPS_MASK): the import agrees on post-padded ids."""
    keras = load_framework("keras")
    from impls.importers import keras_import

    L = keras.layers
    keras.utils.set_random_seed(1)
    x = keras.Input((5,), dtype="int64")
    y = L.LSTM(3, name="lstm")(L.Rescaling(0.5, offset=0.25, name="r")(L.Embedding(7, 4, mask_zero=True, name="e")(x)))
    imported = keras_import.from_model(keras.Model(x, y), (3, 5), "net.py:net")
    assert imported.model.mask_sources()[2] == 0
    ids = np.array([[3, 1, 4, 0, 0], [2, 6, 5, 1, 2], [5, 0, 0, 0, 0]])
    assert error_stats(imported.forward(ids), reference_forward(imported.model, ids)).rel <= BAR
