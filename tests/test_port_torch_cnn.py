"""The torch port on issue 18's kinds and on graphs (impls/ports/torch_port.py): a residual block with BatchNorm
(add reading the input), a concatenate of two paths, conv1d in every padding (valid, same, causal, explicit unequal,
dilation, groups, strides), LayerNorm on maps and vectors, global average/max pools, reshape and permute, each at both
boundaries; forward in float32 and float64, every gradient, one Adam step with BatchNorm in train mode (the moving
statistics after the step against training.reference_step), every center / scale combination ported, and the written port loaded back by
torch alone in a fresh `python -I`."""

from __future__ import annotations

import ast
import dataclasses
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("torch")

from impls.contract.tolerance import assert_close, tolerance
from impls.model import seeded, training
from impls.model.compose import reference_forward, reference_vjp
from impls.model.description import INPUT, Model
from impls.ports import torch_port
from impls.ports.torch_port import code as torch_code

B = 3
UNBIASED = {"momentum": 0.9, "epsilon": 1e-5, "variance_update": "unbiased"}


def residual() -> Model:
    """conv -> BN -> relu -> conv -> BN, + the input, relu, concatenated with the first relu, LayerNorm on the map,
    global average pool, Dense softmax."""
    return seeded.chain("residual", (6, 5, 3), [
        ("conv2d", "conv1", {"filters": 4, "kernel_size": [3, 3], "padding": "same", "use_bias": False}),
        ("batch_norm", "bn1", UNBIASED),
        ("activation", "relu1", {"activation": "relu"}),
        ("conv2d", "conv2", {"filters": 3, "kernel_size": [3, 3], "padding": "same", "use_bias": False}),
        ("batch_norm", "bn2", UNBIASED),
        ("add", "add", {}, ("bn2", INPUT)),
        ("activation", "relu2", {"activation": "relu"}),
        ("concatenate", "cat", {}, ("relu2", "relu1")),
        ("layer_norm", "ln", {"epsilon": 1e-5}),
        ("global_avg_pool", "gap", {}),
        ("dense", "fc", {"units": 4, "activation": "softmax"}),
    ], seed=0, batch=B)  # fmt: skip


def conv1d_net() -> Model:
    """Every conv1d padding (causal with dilation, TF 'same' with stride 2, explicit unequal, groups), BatchNorm1d
    in Keras' biased convention, LayerNorm on an NCW map, a concatenate on the length axis, global max pool."""
    return seeded.chain("conv1d_net", (9, 4), [
        ("conv1d", "causal", {"filters": 6, "kernel_size": 3, "padding": "causal", "dilation": 2, "activation": "tanh"}),
        ("batch_norm", "bn", {"momentum": 0.99}),
        ("conv1d", "same", {"filters": 4, "kernel_size": 2, "padding": "same", "strides": 2}),
        ("conv1d", "explicit", {"filters": 4, "kernel_size": 3, "padding": [2, 0], "groups": 2, "use_bias": False},
         ("bn",)),
        ("layer_norm", "ln", {}),
        ("concatenate", "cat_len", {"axis": 1}, ("same", "ln")),
        ("global_max_pool", "gmp", {}),
        ("dense", "fc", {"units": 3}),
    ], seed=1, batch=B)  # fmt: skip


def shapes_net() -> Model:
    """Reshape and permute on a map (the port permutes to the canonical layout for them), a 1-D flatten before a
    Dense (torch's (c, l) order), BatchNorm1d on (B, C), LayerNorm on vectors, a global pool over a sequence's steps."""
    return seeded.chain("shapes_net", (4, 6, 2), [
        ("conv2d", "conv", {"filters": 3, "kernel_size": [1, 3], "activation": "relu"}),
        ("reshape", "rows", {"target_shape": [4, -1]}),
        ("conv1d", "c1", {"filters": 5, "kernel_size": 2}),
        ("permute", "swap", {"dims": [2, 1]}),
        ("dense", "per_step", {"units": 3, "activation": "tanh"}),  # not linear: a bias right before a BN has no gradient
        ("global_avg_pool", "steps_mean", {}),
        ("batch_norm", "bn_vec", UNBIASED),
        ("layer_norm", "ln_vec", {"scale": True, "center": False}),
        ("dense", "out", {"units": 2}),
    ], seed=2, batch=B)  # fmt: skip


def flat1d_net() -> Model:
    """conv1d -> flatten (torch's (c, l) order) -> Dense, and the flattened map as the output of another path."""
    return seeded.chain("flat1d", (5, 3), [
        ("conv1d", "c", {"filters": 2, "kernel_size": 2}),
        ("flatten", "flat", {}),
        ("dense", "fc", {"units": 3, "activation": "sigmoid"}),
    ], seed=3, batch=B)  # fmt: skip


MODELS = {"residual": residual, "conv1d": conv1d_net, "shapes": shapes_net, "flat1d": flat1d_net}
BOUNDARIES = ("channels_last", "channels_first")


def sample(model: Model, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (B, *model.input_shape))


def rounded(model: Model, dtype: str) -> Model:
    return model.map(lambda a: np.asarray(a).astype(dtype).astype(np.float64))


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(MODELS))
def test_forward_matches_the_reference(name, dtype, boundary):
    model = dataclasses.replace(MODELS[name](), boundary=boundary)
    x = sample(model).astype(dtype)
    y = torch_port.build(model, dtype).forward(x)
    ref = reference_forward(rounded(model, dtype), x.astype(np.float64))
    assert np.abs(ref).max() > 0.05
    assert_close(y, ref, dtype, what=f"torch port {name} {dtype} {boundary}")


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("name", list(MODELS))
def test_every_gradient_matches_the_reference(name, boundary):
    model = dataclasses.replace(MODELS[name](), boundary=boundary)
    x = sample(model)
    dy = np.random.default_rng(2).uniform(-1.0, 1.0, model.shapes(B)[-1])
    dx, grads = torch_port.build(model, "float64").vjp(x, dy)
    ref_dx, ref_grads = reference_vjp(model, x, dy)
    assert set(grads) == set(model.parameters()) == set(ref_grads)
    assert_close(dx, ref_dx, "float64", what=f"{name} dL/dx")
    for key, g in ref_grads.items():
        assert_close(grads[key], g, "float64", what=f"{name} dL/d{key}")


@pytest.mark.parametrize("name", ["residual", "shapes"])
def test_train_step_moves_the_batch_norm_statistics_as_the_reference(name):
    model = MODELS[name]()
    assert model.state()
    x = sample(model)
    t = training.targets(model, reference_forward(model, x), seed=5)
    loss, weights = torch_port.train_step(model, x, t, "float64")
    ref_loss, ref_weights = training.reference_step(model, x, t, "torch")
    assert abs(loss - ref_loss) <= tolerance("float64") * abs(ref_loss)
    assert set(weights) == set(ref_weights) == set(model.parameters()) | set(model.state())
    for key, w in ref_weights.items():
        assert_close(weights[key], w, "float64", what=f"{name} {key} after one Adam step")
    for key, before in model.state().items():  # the statistics moved (train mode), and not by the inference output
        assert not np.allclose(weights[key], before), key


def test_a_biased_batch_norm_is_forward_exact_and_steps_in_torchs_convention():
    model = conv1d_net()  # 'bn' is Keras' (biased) convention
    built = torch_port.build(model, "float64")
    assert any("forward-exact only" in n and "'bn'" in n for n in built.notes), built.notes
    x = sample(model)
    t = training.targets(model, reference_forward(model, x), seed=5)
    _, weights = torch_port.train_step(model, x, t, "float64")
    biased = training.reference_step(model, x, t, "torch")[1]
    unbiased_model = model.replace_layer(1, dataclasses.replace(model.layers[1], options={
        **model.layers[1].options, "variance_update": "unbiased"}))
    unbiased = training.reference_step(unbiased_model, x, t, "torch")[1]
    key = ("bn", "moving_var")
    assert_close(weights[key], unbiased[key], "float64", what="torch's running_var: the unbiased update")
    assert np.abs(weights[key] - biased[key]).max() > 1e-6  # the stated difference is real
    assert_close(weights[("bn", "moving_mean")], biased[("bn", "moving_mean")], "float64")


def test_momentum_is_translated_and_the_source_is_readable():
    model = residual()
    code = torch_code.generate(model)
    src = code.source
    assert "nn.BatchNorm2d(4, eps=1e-05, momentum=0.1)" in src  # the description keeps 0.9 of the old statistic
    assert "x_in = x  # kept: 'add' reads it too" in src and "x = x + x_in" in src
    assert "torch.cat((x, relu1), dim=1)" in src  # canonical axis -1 (channels) is NCHW's dim 1
    assert "self.ln(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)" in src  # LayerNorm over the channels
    assert "nn.AdaptiveAvgPool2d(1)" in src
    assert code.state["bn1.num_batches_tracked"].dtype == np.int64
    tree = ast.parse(src)
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported == {"torch", "pathlib"}
    c1 = torch_code.generate(conv1d_net()).source
    assert "F.pad(x, (4, 0))" in c1 and "causal" in c1 and "F.pad(x, (0, 1))" in c1 and "groups=2" in c1
    assert "momentum=0.01" in c1


def test_every_center_and_scale_combination_ports():
    """torch's BatchNorm is affine or not and its LayerNorm has a bias only beside its weight: the port holds the
    missing parameter frozen at 1 / 0 (tests/test_norm_affine.py tests the numbers)."""
    for layer, options in (("batch_norm", {"center": False}), ("layer_norm", {"scale": False})):
        model = seeded.chain("held", (5, 3), [("conv1d", "c", {"filters": 2, "kernel_size": 2}),
                                              (layer, "bn", options)], batch=B)  # fmt: skip
        assert torch_port.refusal(model, "float32") is None


# --------------------------------------------------------------------------- the written port, torch alone

_LOADER = textwrap.dedent("""
    import importlib.util, sys, torch
    spec = importlib.util.spec_from_file_location("model", sys.argv[3] + "/model.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    m = mod.load(sys.argv[3] + "/weights.pt")
    x = torch.load(sys.argv[1], weights_only=True)
    with torch.no_grad():
        y = m(x)
    torch.save(y, sys.argv[2])
    assert "impls" not in sys.modules and "nnparity" not in sys.modules, sorted(sys.modules)
""")


@pytest.mark.parametrize(("name", "boundary"), [("residual", "channels_first"), ("conv1d", "channels_first"),
                                                ("shapes", "channels_last"), ("flat1d", "channels_last")])  # fmt: skip
def test_written_port_loads_with_torch_alone_and_matches(name, boundary, tmp_path):
    import torch

    model = dataclasses.replace(MODELS[name](), boundary=boundary).astype("float32")
    out = tmp_path / "port"
    torch_port.write(model, out)
    code = torch_code.generate(model)
    if boundary == "channels_first" and len(model.input_shape) == 2:
        assert code.inputs.kind == "ncw"  # a (B, C, L) map, as the torch source takes it
    x = sample(model).astype("float32")
    xin, yout = tmp_path / "x.pt", tmp_path / "y.pt"
    torch.save(torch.from_numpy(code.inputs.to_torch(x)), xin)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    done = subprocess.run([sys.executable, "-I", "-c", _LOADER, str(xin), str(yout), str(out)], check=False, env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    y = torch.load(yout, weights_only=True).numpy()
    assert_close(code.outputs.to_canonical(y), reference_forward(model, x.astype("float64")), "float32",
                 what=f"written {name} port")  # fmt: skip
