"""Keras' SeparableConv2D (issue 24: Xception) as the description's separable_conv2d, one kind: the depthwise step
(depth_multiplier, strides, padding, dilation, no bias), the pointwise 1x1 step with the bias, then the activation.

- Imported from Keras (every option: depth_multiplier 2, strides with 'same', dilation, no bias) it agrees with
  Keras' own layer; an Xception-like block (separable convs, BatchNormalization, a strided 1x1 shortcut, max pool)
  ported to torch, Keras, ONNX and Flax, each loaded alone, agrees with Keras; the Keras port writes SeparableConv2D
  itself and imports back as the same description.
- Planted: the depthwise kernel grouped in the wrong channel order (filter m of channel c at m * C + c instead of
  c * M + m) is caught against Keras' own layer.
- torch and ONNX have no separable layer (their exporters write two convolutions): declared absent.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np
import pytest

from impls.contract.tolerance import error_stats, tolerance
from impls.model.compose import reference_forward, reference_outputs
from tests.alone import run_alone
from verify.conftest import load_framework

B = 3
BAR = tolerance("float32")

KERAS_NET = """
import keras

L = keras.layers
keras.utils.set_random_seed(0)
x = keras.Input((11, 9, 3))
y = L.SeparableConv2D(8, 3, depth_multiplier=2, strides=2, padding="same", activation="relu", name="sep1")(x)
r = L.Conv2D(6, 1, strides=2, padding="same", use_bias=False, name="shortcut")(y)
y = L.SeparableConv2D(6, (3, 2), padding="same", use_bias=False, name="sep2")(y)
y = L.BatchNormalization(name="bn")(y)
y = L.SeparableConv2D(6, 2, dilation_rate=2, padding="same", name="sep3")(L.Activation("relu", name="act")(y))
y = L.MaxPooling2D(3, strides=2, padding="same", name="pool")(y)
y = L.Add(name="add")([y, r])
model = keras.Model(x, L.Dense(4, name="out")(L.GlobalAveragePooling2D(name="gap")(y)))
for layer in model.layers:
    if isinstance(layer, L.BatchNormalization):
        layer.moving_variance.assign(np.linspace(0.5, 2.0, 6))
        layer.beta.assign(np.linspace(-0.5, 0.5, 6))
    if isinstance(layer, L.SeparableConv2D) and layer.use_bias:
        layer.bias.assign(np.linspace(-0.3, 0.4, layer.bias.shape[0]))
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

x, want = np.load("x.npy"), np.load("want.npy")
import keras, onnxruntime as ort, torch
out = {}
with torch.no_grad():
    out["torch"] = module("p_torch/model.py", "p_torch").load()(torch.from_numpy(x)).numpy()
k = keras.saving.load_model("p.keras", safe_mode=True)
out["keras"] = np.asarray(k(x, training=False))
s = ort.InferenceSession("p.onnx", providers=["CPUExecutionProvider"])
out["onnx"] = s.run(None, {s.get_inputs()[0].name: x})[0]
fm, variables = module("p_flax/model.py", "p_flax").load()
out["flax"] = np.asarray(fm.apply(variables, x))
rel = {k_: float(np.max(np.abs(v - want)) / np.max(np.abs(want))) for k_, v in out.items()}
rel["keras classes"] = sorted({type(la).__name__ for la in k.layers})
rel["nnparity loaded"] = sorted(m for m in sys.modules if m.split(".")[0] in ("impls", "nnparity"))
print(json.dumps(rel))
"""


@pytest.fixture(scope="module")
def keras_net(tmp_path_factory):
    load_framework("keras")
    from impls.importers import load

    d = tmp_path_factory.mktemp("separable")
    (d / "net.py").write_text("import numpy as np\n" + textwrap.dedent(KERAS_NET))
    spec = f"{d / 'net.py'}:model"
    return d, spec, load(spec, (B, 11, 9, 3))


def test_separable_conv2d_imports_and_agrees_with_keras_layer_by_layer(keras_net):
    _, _, imported = keras_net
    m = imported.model
    seps = [la for la in m.layers if la.kind == "separable_conv2d"]
    assert [la.name for la in seps] == ["sep1", "sep2", "sep3"]
    assert seps[0].options["depth_multiplier"] == 2 and seps[0].weights["depthwise_kernel"].shape == (3, 3, 3, 2)
    assert seps[0].weights["pointwise_kernel"].shape == (1, 1, 6, 8) and "bias" not in seps[1].weights
    assert seps[2].options["dilation"] == [2, 2]
    x = np.random.default_rng(3).uniform(-1, 1, (B, 11, 9, 3))
    assert error_stats(reference_forward(m, x), imported.forward(x.astype(np.float32))).rel <= BAR
    for i, (got, r) in enumerate(zip(imported.layer_outputs(x.astype(np.float32)), reference_outputs(m, x), strict=True)):
        assert error_stats(got, r).rel <= BAR, m.layers[i].label(i)


def test_torch_and_onnx_declare_separable_absent():
    from impls.importers.onnx_import import REGISTRY as ONNX
    from impls.importers.torch_import import REGISTRY as TORCH

    for reg in (TORCH, ONNX):
        state, why = reg.coverage("separable_conv2d")
        assert state == "absent" and "depthwise_conv2d and conv2d" in why


def test_a_planted_depthwise_channel_order_is_caught(keras_net, monkeypatch):
    """Keras' depthwise output channel c * M + m is filter m of channel c; grouped m * C + c instead, the torch port
    of sep1 (M = 2) disagrees with Keras."""
    from impls import convert
    from impls.model import voices

    _, _, imported = keras_net
    x = np.random.default_rng(4).uniform(-1, 1, (B, 11, 9, 3))
    want = imported.forward(x.astype(np.float32))
    assert error_stats(voices.build("torch_nn", imported.model, "float32").forward(x.astype(np.float32)), want).rel <= BAR
    right = convert.depthwise_to_grouped

    def planted(k):
        kh, kw, c, m = np.shape(k)
        return np.asarray(right(k)).reshape(kh, kw, 1, c, m).transpose(0, 1, 2, 4, 3).reshape(kh, kw, 1, c * m)

    monkeypatch.setattr(convert, "depthwise_to_grouped", planted)
    got = voices.build("torch_nn", imported.model, "float32").forward(x.astype(np.float32))
    assert error_stats(got, want).rel > BAR


def test_an_xception_block_ports_everywhere_and_loads_alone(keras_net, capsys):
    load_framework("torch"), load_framework("onnxruntime"), load_framework("flax")
    from impls.importers import load
    from nnparity import cli

    d, spec, imported = keras_net
    x = np.random.default_rng(5).uniform(-1, 1, (B, 11, 9, 3)).astype(np.float32)
    np.save(d / "x.npy", x)
    np.save(d / "want.npy", np.asarray(imported.forward(x), np.float32))
    cwd = Path.cwd()
    try:
        os.chdir(d)
        for target, path in (("torch", "p_torch"), ("keras", "p.keras"), ("onnx", "p.onnx"), ("flax", "p_flax")):
            argv = ["port", spec, "--to", target, "-o", path, "--input-shape", f"{B},11,9,3"]
            assert cli.main(argv) == 0, (argv, capsys.readouterr().err)
    finally:
        os.chdir(cwd)
    got = run_alone(LOADER, d)
    assert "SeparableConv2D" in got.pop("keras classes")
    assert set(got) == {"torch", "keras", "onnx", "flax"} and all(err <= BAR for err in got.values()), got
    back = load(str(d / "p.keras"), (B, 11, 9, 3)).model  # the Keras port imports back as the same description
    assert [la.kind for la in back.layers] == [la.kind for la in imported.model.layers]
