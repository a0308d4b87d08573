"""The torch port (voice "torch_nn") on issue 18's kinds, through voices.build as the certificate builds it: forward
and every gradient against the NumPy float64 reference, float32 at the table's bar and float64 within its bar, for
conv1d (every padding, dilation, groups, strides), batch_norm (2-D, 3-D and vector inputs), layer_norm, global
average/max pools, reshape, permute, add and concatenate in graphs; and the training step with BatchNorm in train
mode against training.reference_step, parameters and moving statistics. A planted momentum mistake (torch's
momentum written as the description's momentum instead of 1 - momentum) must fail that step's check.

Ids read `torch-cnn-float32-resblock`. The reference is fed the weights the voice holds (rounded to its dtype)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from impls import unavailable_reason
from impls.contract.tolerance import assert_close, error_stats, tolerance
from impls.model import compose, seeded, training, voices
from impls.model.description import INPUT, Model
from verify.headroom import check

if unavailable_reason("torch_nn"):
    pytest.skip(unavailable_reason("torch_nn"), allow_module_level=True)

from impls.ports import torch_port
from impls.ports.torch_port import code as torch_code
from impls.ports.torch_port import normalization as torch_normalization

B = 3
DTYPES = ("float32", "float64")
TORCH_BN = {"momentum": 0.9, "epsilon": 1e-5, "variance_update": "unbiased"}


def make(name: str, input_shape: tuple, specs: list, seed: int, boundary: str = "channels_first") -> Model:
    return seeded.chain(name, input_shape, specs, seed, boundary=boundary, batch=B)


MODELS = {
    "resblock": lambda: make("resblock", (5, 4, 3), [
        ("conv2d", "conv1", {"filters": 3, "kernel_size": [3, 3], "padding": "same", "use_bias": False}),
        ("batch_norm", "bn1", TORCH_BN),
        ("activation", "relu1", {"activation": "relu"}),
        ("conv2d", "conv2", {"filters": 3, "kernel_size": [3, 3], "padding": "same", "use_bias": False}),
        ("batch_norm", "bn2", TORCH_BN),
        ("add", "res", {}, ("bn2", INPUT)),
        ("activation", "relu2", {"activation": "relu"}),
        ("global_avg_pool", "gap", {}),
        ("dense", "fc", {"units": 4, "activation": "softmax"}),
    ], seed=0),
    "conv1d": lambda: make("conv1d", (10, 4), [
        ("conv1d", "causal", {"filters": 6, "kernel_size": 3, "padding": "causal", "dilation": 2}),
        ("batch_norm", "bn", {**TORCH_BN, "momentum": 0.99}),
        ("activation", "tanh", {"activation": "tanh"}),
        ("conv1d", "same", {"filters": 4, "kernel_size": 4, "padding": "same", "strides": 3}),
        ("conv1d", "explicit", {"filters": 6, "kernel_size": 2, "padding": [1, 0], "groups": 2}, ("tanh",)),
        ("layer_norm", "ln", {"epsilon": 1e-5}),
        ("global_max_pool", "gmp", {}),
        ("global_avg_pool", "gap", {}, ("same",)),
        ("concatenate", "cat", {}, ("gmp", "gap")),
        ("dense", "fc", {"units": 3}),
    ], seed=1),
    "shapes": lambda: make("shapes", (4, 6, 2), [
        ("conv2d", "conv", {"filters": 3, "kernel_size": [1, 3], "activation": "tanh"}),
        ("permute", "hw", {"dims": [2, 1, 3]}),
        ("reshape", "rows", {"target_shape": [-1, 3]}),
        ("conv1d", "c1", {"filters": 4, "kernel_size": 3, "activation": "sigmoid"}),
        ("batch_norm", "bn_map", TORCH_BN),
        ("flatten", "flat", {}),
        ("dense", "d1", {"units": 5, "activation": "tanh"}),
        ("batch_norm", "bn_vec", TORCH_BN),
        ("layer_norm", "ln_vec", {}),
        ("dense", "d2", {"units": 5, "activation": "tanh"}),
        ("add", "skip", {}, ("ln_vec", "d2")),
        ("dense", "out", {"units": 2}),
    ], seed=2, boundary="channels_last"),
}  # fmt: skip


def data(m: Model, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.9, 0.9, (B, *m.input_shape))


def rounded(m: Model, dtype: str) -> Model:
    return m.map(lambda a: np.asarray(a).astype(dtype).astype(np.float64))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(MODELS))
def test_forward_and_gradients_match_the_reference(name, dtype):
    m = MODELS[name]()
    built = voices.build("torch_nn", m, dtype)
    ref_model, x = rounded(m, dtype), data(m).astype(dtype)
    ref = compose.reference_forward(ref_model, x.astype(np.float64))
    assert np.abs(ref).max() > 0.05
    check(built.forward(x), ref, dtype, "torch_nn", what=f"torch-cnn-{dtype}-{name} forward")
    dy = np.random.default_rng(2).uniform(-1.0, 1.0, ref.shape)
    dx, grads = built.vjp(x, dy.astype(dtype))
    ref_dx, ref_grads = compose.reference_vjp(ref_model, x.astype(np.float64), dy)
    assert set(grads) == set(ref_grads) == set(m.parameters())
    check(dx, ref_dx, dtype, "torch_nn", what=f"torch-cnn-{dtype}-{name} dL/dx")
    for key, g in ref_grads.items():
        check(grads[key], g, dtype, "torch_nn", what=f"torch-cnn-{dtype}-{name} dL/d{key}")


def _step_errors(m: Model) -> dict:
    """{tensor: relative error} of the port's train-mode Adam step against training.reference_step (torch's
    convention), every parameter and moving statistic; and the loss."""
    x = data(m)
    t = training.targets(m, compose.reference_forward(m, x), seed=5)
    loss, got = torch_port.train_step(m, x, t, "float64")
    ref_loss, want = training.reference_step(m, x, t, "torch")
    assert set(got) == set(want) == set(m.parameters()) | set(m.state())
    errs = {"/".join(k): error_stats(got[k], w).rel for k, w in want.items()}
    errs["loss"] = abs(loss - ref_loss) / abs(ref_loss)
    return errs


@pytest.mark.parametrize("name", ["resblock", "shapes"])
def test_the_training_step_matches_the_reference_step_with_the_moving_statistics(name):
    errs = _step_errors(MODELS[name]())
    assert any(k.endswith("moving_var") for k in errs)
    bad = {k: e for k, e in errs.items() if not e <= tolerance("float64")}
    assert not bad, bad


def test_a_planted_momentum_mistake_fails_the_training_step_check(monkeypatch):
    m = MODELS["resblock"]()
    assert max(e for e in _step_errors(m).values()) <= tolerance("float64")  # unplanted: passes
    monkeypatch.setattr(torch_normalization, "torch_momentum", lambda momentum: float(momentum))  # momentum, not 1 - momentum
    assert "momentum=0.9)" in torch_code.generate(m).source
    errs = _step_errors(m)
    stats = {k: e for k, e in errs.items() if "moving" in k}
    assert min(stats.values()) > 1e3 * tolerance("float64"), stats  # every moving statistic is caught
    with pytest.raises(AssertionError):  # the same bar the check above applies
        x = data(m)
        t = training.targets(m, compose.reference_forward(m, x), seed=5)
        got = torch_port.train_step(m, x, t, "float64")[1]
        want = training.reference_step(m, x, t, "torch")[1]
        for k in m.state():
            assert_close(got[k], want[k], "float64", what=f"planted momentum: {k}")
    # inference does not see it: the forward still matches (only a training step can catch this mistake)
    x = data(m)
    check(voices.build("torch_nn", m, "float64").forward(x), compose.reference_forward(m, x), "float64", "torch_nn",
          what="torch-cnn-float64-resblock forward with the planted momentum")  # fmt: skip


def test_the_voices_boundary_is_the_sources_layout():
    cf = MODELS["conv1d"]()
    assert torch_code.generate(cf).inputs.kind == "ncw"  # a channels_first source's (B, C, L) map
    cl = dataclasses.replace(cf, boundary="channels_last")
    assert torch_code.generate(cl).inputs.kind == "plain"
