"""The flax voice (voices.build("flax", ...): impls/ports/flax_port.py's generated code under jax.jit) on the issue-18
kinds and graphs: forward and every gradient against the NumPy float64 reference, at the float32 bar in float32 and
within 1e-10 in float64; one optax.adam step of a BatchNorm model in training mode (train=True,
mutable=["batch_stats"]) is training.reference_step in Flax's convention (torch's Adam, eps 1e-8), parameters AND the
moving statistics after it. Measured here, not assumed: flax.linen.BatchNorm keeps `momentum` of the old value and
updates its var with the BIASED batch variance (variance_update "biased"); a planted momentum mistake in the port
(torch's 1 - momentum) fails the check; a torch-convention (unbiased) BatchNorm steps in Flax's biased convention and
says so (what nnparity/trainref.project("flax") compares with: its parameters are the canonical step's, moving_var not).

Models (B = 3; seeded inits, non-zero biases, moving statistics away from 0 and 1):
- conv1d: same (stride 2, groups 2) -> causal (dilation 2) -> valid (dilation 2, groups 3, tanh) -> [2, 1] no bias;
- bn_stack: (Conv1D -> BatchNorm -> ReLU) x 3 -> global_avg_pool -> dense softmax;
- resblock: conv2d -> batch_norm -> relu -> conv2d -> batch_norm, add with the input, relu, global_avg_pool, dense;
- mixed: a graph: dense -> layer_norm; layer_norm(center=False, scale=False) of the input; concatenate; reshape,
  permute, layer_norm(center only), flatten, dense, and a global_max_pool branch concatenated at the end.
"""

from __future__ import annotations

import numpy as np
import pytest

from impls import convert
from impls.contract.tolerance import error_stats, tolerance
from impls.model import compose, seeded, training, voices
from impls.model.description import INPUT, Model
from verify.conftest import load, load_framework
from verify.headroom import check

flax_port = pytest.importorskip("impls.ports.flax_port")

B, L, C = 3, 16, 6


def _conv_bn_relu(i: int, filters: int, K: int, **kw) -> list[tuple]:
    return [("conv1d", f"conv{i}", {"filters": filters, "kernel_size": K, **kw}),
            ("batch_norm", f"bn{i}", {"momentum": 0.9, "epsilon": 1e-3}),
            ("activation", f"relu{i}", {"activation": "relu"})]  # fmt: skip


MODELS: dict[str, Model] = {
    "conv1d": seeded.chain("conv1d", (L, C), [
        ("conv1d", "same", {"filters": 6, "kernel_size": 3, "strides": 2, "padding": "same", "groups": 2}),
        ("conv1d", "causal", {"filters": 6, "kernel_size": 3, "dilation": 2, "padding": "causal"}),
        ("conv1d", "valid", {"filters": 9, "kernel_size": 2, "dilation": 2, "groups": 3, "activation": "tanh"}),
        ("conv1d", "explicit", {"filters": 4, "kernel_size": 3, "padding": [2, 1], "use_bias": False})], 60, batch=B),
    "bn_stack": seeded.chain("bn_stack", (L, C), [
        *_conv_bn_relu(1, 5, 3, padding="same"), *_conv_bn_relu(2, 4, 3, strides=2),
        *_conv_bn_relu(3, 4, 2, padding="causal"), ("global_avg_pool", "gap", {}),
        ("dense", "out", {"units": 3, "activation": "softmax"})], 61, batch=B),
    "resblock": seeded.chain("resblock", (5, 4, 3), [
        ("conv2d", "c1", {"filters": 3, "kernel_size": [3, 3], "padding": "same"}),
        ("batch_norm", "b1", {}), ("activation", "r1", {"activation": "relu"}),
        ("conv2d", "c2", {"filters": 3, "kernel_size": [3, 3], "padding": "same"}),
        ("batch_norm", "b2", {"momentum": 0.8, "epsilon": 1e-5}),
        ("add", "res", {}, ("b2", INPUT)), ("activation", "r2", {"activation": "relu"}),
        ("global_avg_pool", "gap", {}), ("dense", "out", {"units": 2})], 62, batch=B),
    "mixed": seeded.chain("mixed", (4, C), [
        ("dense", "d", {"units": 5}, (INPUT,)), ("layer_norm", "ln", {"epsilon": 1e-5}),
        ("layer_norm", "ln_plain", {"center": False, "scale": False}, (INPUT,)),
        ("concatenate", "cat", {}, ("ln", "ln_plain")),  # (4, 11)
        ("reshape", "rs", {"target_shape": [11, -1]}), ("permute", "pm", {"dims": [2, 1]}),  # (4, 11)
        ("layer_norm", "ln_center", {"scale": False}), ("flatten", "fl", {}), ("dense", "head", {"units": 3}),
        ("global_max_pool", "gmp", {}, ("cat",)),  # (11,)
        ("concatenate", "both", {}, ("head", "gmp"))], 63, batch=B),
}  # fmt: skip


def data(name: str, dtype: str) -> np.ndarray:
    m = MODELS[name]
    return np.random.default_rng(70 + list(MODELS).index(name)).uniform(-1, 1, (B, *m.input_shape)).astype(dtype)


@pytest.fixture(scope="module", autouse=True)
def _flax():
    load("flax")  # skips with the reason where Flax is not installed


def _compare(b, m: Model, x: np.ndarray, dtype: str, what: str) -> None:
    x64 = x.astype("float64")
    y_ref = compose.reference_forward(m, x64)
    y = b.forward(x)
    assert y.dtype == dtype
    check(y, y_ref, dtype, "flax", what=f"{what} forward")
    dy = np.random.default_rng(71).uniform(-1, 1, y_ref.shape).astype(dtype)
    dx_ref, g_ref = compose.reference_vjp(m, x64, dy.astype("float64"))
    dx, grads = b.vjp(x, dy)
    assert list(grads) == list(m.parameters())  # the moving statistics are state: no gradient
    check(dx, dx_ref, dtype, "flax", what=f"{what} dL/dx")
    for key, g in grads.items():
        assert g.shape == m.parameters()[key].shape, key
        check(g, g_ref[key], dtype, "flax", what=f"{what} dL/d{key}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(MODELS))
def test_forward_and_every_gradient_match_the_reference(name, dtype):
    b = voices.build("flax", MODELS[name], dtype)
    assert b.mode == "jit"
    _compare(b, MODELS[name], data(name, dtype), dtype, f"flax voice {name} {dtype}")


def test_the_float64_bar_is_1e_10_and_the_models_hold_what_they_claim():
    assert tolerance("float64") == 1e-10
    kinds = {la.kind for m in MODELS.values() for la in m.layers}
    assert kinds >= {"conv1d", "conv2d", "batch_norm", "layer_norm", "global_avg_pool", "global_max_pool", "reshape",
                     "permute", "add", "concatenate", "flatten"}  # fmt: skip
    pads = [la.options.get("padding", "valid") for la in MODELS["conv1d"].layers]
    assert pads == ["same", "causal", "valid", [2, 1]]
    assert not MODELS["resblock"].is_chain() and not MODELS["mixed"].is_chain()
    bn = MODELS["bn_stack"].state()
    assert all(np.min(np.abs(v - (0.0 if k[1] == "moving_mean" else 1.0))) > 1e-3 for k, v in bn.items())


# --------------------------------------------------------------------------- Flax's own BatchNorm, measured


def test_flax_batchnorm_keeps_momentum_of_the_old_value_and_updates_with_the_biased_variance():
    jax = load_framework("jax")
    nn = load_framework("flax")  # flax.linen
    jnp = jax.numpy
    g = np.random.default_rng(72)
    x = g.uniform(-1, 1, (B, L, C))
    mean0, var0, m = g.uniform(-0.3, 0.3, C), g.uniform(0.5, 2.0, C), 0.9
    bn = nn.BatchNorm(use_running_average=False, momentum=m, epsilon=1e-3, param_dtype=jnp.float64)
    variables = {"params": {"scale": jnp.ones(C, jnp.float64), "bias": jnp.zeros(C, jnp.float64)},
                 "batch_stats": {"mean": jnp.asarray(mean0), "var": jnp.asarray(var0)}}  # fmt: skip
    y, moved = bn.apply(variables, jnp.asarray(x), mutable=["batch_stats"])
    n = B * L
    mu, biased = x.mean((0, 1)), x.var((0, 1))
    np.testing.assert_allclose(np.asarray(moved["batch_stats"]["mean"]), m * mean0 + (1 - m) * mu, rtol=1e-12)
    got_var = np.asarray(moved["batch_stats"]["var"])
    np.testing.assert_allclose(got_var, m * var0 + (1 - m) * biased, rtol=1e-12)
    unbiased_update = m * var0 + (1 - m) * biased * n / (n - 1)
    assert np.min(np.abs(got_var - unbiased_update)) > 1e-5  # torch's convention would be measurably different
    np.testing.assert_allclose(np.asarray(y), (x - mu) / np.sqrt(biased + 1e-3), rtol=1e-10)  # normalised: biased


# --------------------------------------------------------------------------- one training step


def _step_checked(m: Model, x: np.ndarray, t: np.ndarray):
    """flax_port.train_step against training.reference_step (Flax's convention): the loss, every parameter and the
    moving statistics after the step. A conv bias feeding a BatchNorm in training mode has gradient zero in exact
    arithmetic (the batch mean takes it away): both steps move it by rounding noise times lr / eps (~1e-11), which is
    no comparison, so there both must hardly move (< 1e-6 lr) and the rest is compared at the float64 bar."""
    result = flax_port.train_step(m, x, t)
    loss, weights = result
    loss_ref, w_ref = training.reference_step(m, x, t, *training.FRAMEWORK_ADAM["flax"])
    assert result.exact and not result.notes
    assert set(weights) == set(w_ref) == set(m.parameters()) | set(m.state())
    assert abs(loss - loss_ref) <= tolerance("float64") * abs(loss_ref)
    before = {**m.parameters(), **m.state()}
    y = compose.reference_train(m, x)[0][-1]
    _, dy = training.loss_and_dy(training.loss_kind(m), y, t)
    _, g_ref, _ = compose.reference_train_vjp(m, x, dy)
    for key in w_ref:
        if key in g_ref and np.max(np.abs(g_ref[key])) < 1e-12:  # a bias before a training-mode BatchNorm
            assert key[1] == "bias", key
            for w in (weights[key], w_ref[key]):
                assert np.max(np.abs(w - before[key])) < 1e-6 * training.LR, key
            continue
        check(weights[key], w_ref[key], "float64", "flax", what=f"{m.name} after one optax.adam step: {key}")
    for key in m.state():
        assert np.max(np.abs(w_ref[key] - before[key])) > 1e-3, key  # the statistics really moved
    return weights, w_ref


@pytest.mark.parametrize("name", ["bn_stack", "resblock"])
def test_one_training_step_is_the_reference_step_with_the_moving_statistics(name):
    m = MODELS[name].astype("float64")
    x = data(name, "float64")
    y = compose.reference_train(m, x)[0][-1]
    if training.loss_kind(m) == "categorical_crossentropy":
        training.check_unsaturated(y)
    t = training.targets(m, y, 73)
    _step_checked(m, x, t)


def test_a_planted_momentum_mistake_in_the_port_fails(monkeypatch):
    """The port writing torch's momentum (1 - momentum, the new value's share) for nn.BatchNorm's: the forward at
    inference does not see it, the training step's moving statistics do."""
    m = MODELS["bn_stack"].astype("float64")
    x = data("bn_stack", "float64")
    t = training.targets(m, compose.reference_train(m, x)[0][-1], 73)
    monkeypatch.setattr(convert, "batch_norm_momentum_to_flax", lambda mom: 1.0 - float(mom))
    code = flax_port.source(m)
    assert "momentum=0.0999" in code and "momentum=0.9," not in code  # the mistake reached the generated code
    with pytest.raises(AssertionError, match="differ"):
        _step_checked(m, x, t)
    _, weights = flax_port.train_step(m, x, t)
    _, w_ref = training.reference_step(m, x, t, *training.FRAMEWORK_ADAM["flax"])
    rel = max(error_stats(weights[k], w_ref[k]).rel for k in m.state())
    assert rel > 1e-2, rel  # far outside any bar
    b = voices.build("flax", m, "float64")  # the inference forward is unchanged by it
    check(b.forward(x), compose.reference_forward(m, x), "float64", "flax", what="planted momentum, inference")


def test_an_unbiased_batchnorm_steps_in_flaxs_biased_convention_and_says_so():
    """variance_update "unbiased" (torch's): the step is the reference step with the biased update (what
    nnparity/trainref.project("flax") compares with), the parameters the canonical step's, and moving_var not."""
    trainref = pytest.importorskip("nnparity.trainref")
    m = seeded.chain("torchbn", (L, C), [
        ("conv1d", "conv", {"filters": 4, "kernel_size": 2, "use_bias": False}),
        ("batch_norm", "torch_bn", {"momentum": 0.9, "epsilon": 1e-5, "variance_update": "unbiased"}),
        ("global_avg_pool", "gap", {}), ("dense", "out", {"units": 2})], 64, batch=B).astype("float64")  # fmt: skip
    x = data("bn_stack", "float64")
    t = training.targets(m, compose.reference_train(m, x)[0][-1], 74)
    result = flax_port.train_step(m, x, t)
    assert not result.exact and any("'torch_bn'" in n and "biased" in n for n in result.notes)
    _, weights = result
    _, flaxs, notes = trainref.reference_step("flax", m, x, t)
    _, canonical = training.reference_step(m, x, t, *training.FRAMEWORK_ADAM["flax"])
    assert notes
    for key in flaxs:
        check(weights[key], flaxs[key], "float64", "flax", what=f"unbiased BatchNorm, Flax's convention: {key}")
        if key[1] != "moving_var":
            check(weights[key], canonical[key], "float64", "flax", what=f"unbiased BatchNorm, canonical: {key}")
    assert error_stats(weights[("torch_bn", "moving_var")], canonical[("torch_bn", "moving_var")]).rel > 1e-4
