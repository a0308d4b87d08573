"""BatchNorm and LayerNorm with any combination of center and scale, in every port (issue 24: Keras' InceptionV3 is
built of BatchNormalization(scale=False)).

- torch: the affine module with the missing parameter held at its identity value (weight 1, bias 0) and frozen
  (requires_grad False): forward in float32 and float64, every gradient (the frozen one is no parameter), one Adam
  step against the reference step (it stays at 1 / 0), torch's trainable count equal to the description's; the torch
  importer reads such a frozen weight back as no scale (the round trip).
- A Keras source of InceptionV3's conv -> BatchNormalization(scale=False) -> relu, and its center=False / neither
  siblings, ported to torch, Keras, ONNX and Flax, each loaded by its own framework alone, agreeing with Keras.
- Planted: the torch port's missing scale left trainable (a parameter the source does not have) is caught.
"""

from __future__ import annotations

import importlib
import os
import textwrap
from pathlib import Path

import numpy as np
import pytest

from impls.contract.tolerance import assert_close, error_stats, tolerance
from impls.model import seeded, training
from impls.model.compose import reference_forward, reference_vjp
from tests.alone import run_alone
from verify.conftest import load_framework

B = 3
BAR = tolerance("float32")
UNBIASED = {"momentum": 0.9, "epsilon": 1e-5, "variance_update": "unbiased"}
COMBOS = [(True, False), (False, True), (False, False), (True, True)]  # (center, scale)


def combos_net():
    """A map through batch_norm in each center / scale combination, layer_norm without scale (a bias alone) and
    without center, global pool, dense."""
    specs = [("conv2d", "conv", {"filters": 4, "kernel_size": [2, 2], "activation": "tanh"})]
    for k, (center, scale) in enumerate(COMBOS):
        specs.append(("batch_norm", f"bn{k}", {**UNBIASED, "center": center, "scale": scale}))
        specs.append(("activation", f"act{k}", {"activation": "tanh"}))
    specs += [("layer_norm", "ln_bias", {"center": True, "scale": False}),
              ("layer_norm", "ln_scale", {"center": False, "scale": True}),
              ("global_avg_pool", "gap", {}), ("dense", "fc", {"units": 3, "activation": "softmax"})]  # fmt: skip
    return seeded.chain("combos", (6, 5, 3), specs, seed=4, batch=B, boundary="channels_first")


def sample(model, seed=1):
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (B, *model.input_shape))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_torch_port_forward_of_every_combination(dtype):
    from impls.ports import torch_port

    model = combos_net()
    assert torch_port.refusal(model, dtype) is None
    x = sample(model).astype(dtype)
    y = torch_port.build(model, dtype).forward(x)
    ref = reference_forward(model.map(lambda a: np.asarray(a).astype(dtype).astype(np.float64)), x.astype(np.float64))
    assert_close(y, ref, dtype, what=f"combos {dtype}")


def test_torch_port_gradients_leave_the_frozen_parameters_out():
    from impls.ports import torch_port

    model = combos_net()
    x = sample(model)
    dy = np.random.default_rng(2).uniform(-1.0, 1.0, model.shapes(B)[-1])
    dx, grads = torch_port.build(model, "float64").vjp(x, dy)
    ref_dx, ref_grads = reference_vjp(model, x, dy)
    assert set(grads) == set(model.parameters()) == set(ref_grads)
    assert ("bn0", "gamma") not in grads and ("bn1", "beta") not in grads and ("ln_bias", "gamma") not in grads
    assert_close(dx, ref_dx, "float64", what="dL/dx")
    for key, g in ref_grads.items():
        assert_close(grads[key], g, "float64", what=f"dL/d{key}")


def _params(model) -> int:
    """The description's trainable count (param_count also counts a BatchNorm's moving statistics, as Keras does)."""
    return sum(int(a.size) for a in model.parameters().values())


def _trainable(net) -> int:
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def test_torch_port_train_step_keeps_the_frozen_weight_and_matches_the_reference():
    torch_build = importlib.import_module("impls.ports.torch_port.build")

    model = combos_net()
    net, code, _ = torch_build.in_memory(model, "float64")
    assert _trainable(net) == _params(model)
    assert "frozen(nn.BatchNorm2d(4, eps=1e-05, momentum=0.1), 'weight')" in code.source
    assert "affine=False" in code.source and "frozen(nn.LayerNorm(4, eps=0.001), 'weight')" in code.source
    x = sample(model)
    t = training.targets(model, reference_forward(model, x), seed=5)
    loss, weights = torch_build.train_step(model, x, t, "float64")
    ref_loss, ref_weights = training.reference_step(model, x, t, "torch")
    assert abs(loss - ref_loss) <= tolerance("float64") * abs(ref_loss)
    assert set(weights) == set(ref_weights)
    for key, w in ref_weights.items():
        assert_close(weights[key], w, "float64", what=f"{key} after one Adam step")


def test_a_planted_trainable_missing_scale_is_caught(monkeypatch):
    """The port's frozen(...) left out: torch's BatchNorm then trains a weight the source does not have."""
    torch_build = importlib.import_module("impls.ports.torch_port.build")
    from impls.ports.torch_port import normalization

    model = combos_net()
    monkeypatch.setattr(normalization, "_frozen", lambda init, opts: (init, ()))
    net, _, _ = torch_build.in_memory(model, "float64")
    assert _trainable(net) != _params(model)


def test_torch_importer_reads_a_frozen_unit_weight_as_no_scale():
    """The torch port's module imported back: the frozen weight 1 is scale=False, the frozen bias 0 center=False;
    a frozen weight that is not 1 stays a weight (a frozen, trained BatchNorm)."""
    torch = load_framework("torch")
    from impls.importers import torch_import
    torch_build = importlib.import_module("impls.ports.torch_port.build")

    model = combos_net()
    net, _, _ = torch_build.in_memory(model, "float32")
    back = torch_import.from_module(net, (B, 3, 6, 5), "port").model
    got = {la.name: (la.options["center"], la.options["scale"]) for la in back.layers if la.kind.endswith("_norm")}
    assert [got[f"bn{k}"] for k in range(4)] == COMBOS and got["ln_bias"] == (True, False)
    bn = torch.nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.weight.fill_(2.0)
    bn.weight.requires_grad_(False)
    one = torch_import.from_module(torch.nn.Sequential(bn).eval(), (B, 3, 4, 4), "frozen").model.layers[0]
    assert one.options["scale"] and float(one.weights["gamma"][0]) == 2.0


KERAS_NET = """
import keras

L = keras.layers
keras.utils.set_random_seed(0)


def conv_bn(x, filters, name, center=True, scale=False):  # keras.applications.inception_v3's conv2d_bn
    x = L.Conv2D(filters, 3, padding="same", use_bias=False, name=name + "_conv")(x)
    x = L.BatchNormalization(axis=3, center=center, scale=scale, name=name + "_bn")(x)
    return L.Activation("relu", name=name)(x)


x = keras.Input((7, 6, 3))
y = conv_bn(x, 4, "a")
y = conv_bn(y, 5, "b", center=False, scale=True)
y = conv_bn(y, 4, "c", center=False, scale=False)
model = keras.Model(x, L.Dense(3, name="out")(L.GlobalAveragePooling2D(name="gap")(y)))
for layer in model.layers:  # trained statistics: not the fresh 0 / 1
    if isinstance(layer, L.BatchNormalization):
        g = np.random.default_rng(len(layer.name))
        layer.moving_mean.assign(g.uniform(-0.5, 0.5, layer.moving_mean.shape))
        layer.moving_variance.assign(g.uniform(0.5, 2.0, layer.moving_variance.shape))
        if layer.center:
            layer.beta.assign(g.uniform(-0.5, 0.5, layer.beta.shape))
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
    net = module("p_torch/model.py", "p_torch").load()
    out["torch"] = net(torch.from_numpy(x)).numpy()
    out["torch trainable"] = sum(p.numel() for p in net.parameters() if p.requires_grad)
out["keras"] = np.asarray(keras.saving.load_model("p.keras", safe_mode=True)(x, training=False))
s = ort.InferenceSession("p.onnx", providers=["CPUExecutionProvider"])
out["onnx"] = s.run(None, {s.get_inputs()[0].name: x})[0]
fm, variables = module("p_flax/model.py", "p_flax").load()
out["flax"] = np.asarray(fm.apply(variables, x))
rel = {k: (v if k.endswith("trainable") else float(np.max(np.abs(v - want)) / np.max(np.abs(want)))) for k, v in out.items()}
rel["nnparity loaded"] = sorted(m for m in sys.modules if m.split(".")[0] in ("impls", "nnparity"))
print(json.dumps(rel))
"""


def test_keras_inception_conv_bn_ports_everywhere_and_loads_alone(tmp_path, capsys):
    keras = load_framework("keras")
    load_framework("torch"), load_framework("onnxruntime"), load_framework("flax")
    from impls.importers import load
    from nnparity import cli

    (tmp_path / "net.py").write_text("import numpy as np\n" + textwrap.dedent(KERAS_NET))
    spec = f"{tmp_path / 'net.py'}:model"
    imported = load(spec, (B, 7, 6, 3))
    bns = [la for la in imported.model.layers if la.kind == "batch_norm"]
    assert [(la.options["center"], la.options["scale"]) for la in bns] == [(True, False), (False, True), (False, False)]
    x = np.random.default_rng(3).uniform(-1, 1, (B, 7, 6, 3)).astype(np.float32)
    want = np.asarray(imported.forward(x))
    assert error_stats(reference_forward(imported.model, x.astype(np.float64)), want).rel <= BAR
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "want.npy", want.astype(np.float32))
    cwd = Path.cwd()
    try:
        os.chdir(tmp_path)
        for target, path in (("torch", "p_torch"), ("keras", "p.keras"), ("onnx", "p.onnx"), ("flax", "p_flax")):
            argv = ["port", spec, "--to", target, "-o", path, "--input-shape", f"{B},7,6,3"]
            assert cli.main(argv) == 0, (argv, capsys.readouterr().err)
    finally:
        os.chdir(cwd)
    got = run_alone(LOADER, tmp_path)
    assert got.pop("torch trainable") == _params(imported.model)
    assert all(err <= BAR for err in got.values()), got
    assert keras  # loaded through frameworks first
