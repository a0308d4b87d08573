"""The keras voice (impls/ports/keras_port.py through voices.build) against the float64 NumPy reference on every
issue-18 kind, one small model per option that changes what Keras is asked to build: forward in float32 and float64
at the tolerance table's bars, every gradient in float64, the training step's moving statistics; and the check
catching planted port bugs (BatchNorm's moving statistics swapped, momentum handed over as torch's 1 - m, a
ZeroPadding1D's pads swapped, a Concatenate's axis taken from the other end)."""

from __future__ import annotations

import numpy as np
import pytest

from impls.contract.tolerance import assert_close
from impls.model import seeded, training
from impls.model.compose import reference_forward, reference_vjp
from impls.model.voices import build

keras_port = pytest.importorskip("impls.ports.keras_port")
BATCH = 3

CASES = {
    "conv1d valid": ((9, 4), [("conv1d", "k", {"filters": 3, "kernel_size": 3, "activation": "tanh"})]),
    "conv1d same strided": ((9, 4), [("conv1d", "k", {"filters": 4, "kernel_size": 4, "strides": 2, "padding": "same"})]),
    "conv1d causal dilated": ((9, 4), [("conv1d", "k", {"filters": 3, "kernel_size": 3, "padding": "causal", "dilation": 2})]),
    "conv1d explicit grouped": ((9, 4), [("conv1d", "k", {"filters": 6, "kernel_size": 2, "padding": [2, 0], "groups": 2,
                                                          "use_bias": False})]),
    "batch_norm 3d": ((5, 4), [("batch_norm", "k", {"momentum": 0.8, "epsilon": 1e-2})]),
    "batch_norm 4d no affine": ((4, 3, 2), [("batch_norm", "k", {"center": False, "scale": False})]),
    "layer_norm": ((5, 4), [("layer_norm", "k", {"epsilon": 1e-5})]),
    "layer_norm no centre": ((4, 3, 2), [("layer_norm", "k", {"center": False})]),
    "global pools": ((5, 4, 3), [("global_max_pool", "k", {})]),
    "global avg 1d": ((6, 4), [("global_avg_pool", "k", {})]),
    "reshape permute flatten": ((6, 4), [("reshape", "r", {"target_shape": [3, -1, 2]}), ("permute", "p", {"dims": [3, 1, 2]}),
                                         ("flatten", "f", {}), ("dense", "d", {"units": 3})]),
    "add": ((5, 4), [("dense", "a", {"units": 4}), ("add", "k", {}, ("a", "input"))]),
    "concatenate time": ((5, 4), [("conv1d", "a", {"filters": 4, "kernel_size": 2}), ("concatenate", "k", {"axis": 1}, ("a", "input"))]),
    "concatenate channels": ((5, 4, 2), [("conv2d", "a", {"filters": 3, "kernel_size": [2, 2], "padding": "same"}),
                                         ("concatenate", "k", {"axis": -1}, ("input", "a"))]),
}  # fmt: skip


def model_of(name: str, seed: int = 1):
    shape, specs = CASES[name]
    return seeded.chain(name.replace(" ", "_"), shape, specs, seed=seed, batch=BATCH)


def data(model, seed=5):
    return np.random.default_rng(seed).uniform(-1.0, 1.5, (BATCH, *model.input_shape))


@pytest.mark.parametrize("name", list(CASES))
def test_keras_voice_forward_and_vjp(name):
    model = model_of(name)
    x = data(model)
    ref = reference_forward(model, x)
    for dtype in ("float32", "float64"):
        assert_close(build("keras", model, dtype).forward(x), ref, dtype, what=f"{name} {dtype}")
    dy = np.random.default_rng(6).standard_normal(ref.shape)
    dx, grads = build("keras", model, "float64").vjp(x, dy)
    rdx, rgrads = reference_vjp(model, x, dy)
    assert_close(dx, rdx, "float64", what=f"{name} dx")
    assert set(grads) == set(rgrads)
    for k, g in rgrads.items():
        assert_close(grads[k], g, "float64", what=f"{name} d{k}")


@pytest.mark.parametrize("name", ["batch_norm 3d"])
def test_keras_step_moves_the_moving_statistics_as_the_reference(name):
    model = model_of(name)
    x = data(model)
    t = training.targets(model, reference_forward(model, x), seed=7)
    _, after = keras_port.train_step(model, x, t, "float64")
    _, want = training.reference_step(model, x, t, "keras")
    for k in model.state():
        assert_close(after[k], want[k], "float64", what=f"{name} {k}")


def test_a_model_without_parameters_but_with_state_steps_its_statistics():
    """batch_norm without gamma and beta has no parameters: the forward still uses the moving statistics."""
    model = model_of("batch_norm 4d no affine")
    assert not model.parameters() and set(model.state()) == {("k", "moving_mean"), ("k", "moving_var")}
    x = data(model)
    assert_close(build("keras", model, "float64").forward(x), reference_forward(model, x), "float64")


# --------------------------------------------------------------------------- planted bugs are caught


def _fails(model, x, dtype="float64"):
    try:
        assert_close(build("keras", model, dtype).forward(x), reference_forward(model, x), dtype)
    except AssertionError:
        return True
    return False


def test_swapped_moving_statistics_are_caught(monkeypatch):
    model = model_of("batch_norm 3d")
    x = data(model)
    assert not _fails(model, x)
    monkeypatch.setitem(keras_port.KERAS_NAMES, "moving_var", "moving_mean")
    monkeypatch.setitem(keras_port.KERAS_NAMES, "moving_mean", "moving_variance")
    assert _fails(model, x)


def test_momentum_handed_over_as_torchs_is_caught(monkeypatch):
    model = model_of("batch_norm 3d")
    x = data(model)
    t = training.targets(model, reference_forward(model, x), seed=7)
    real = keras_port.keras.layers.BatchNormalization

    def torch_momentum(*a, momentum=0.99, **k):
        return real(*a, momentum=1 - momentum, **k)

    monkeypatch.setattr(keras_port.keras.layers, "BatchNormalization", torch_momentum)
    _, after = keras_port.train_step(model, x, t, "float64")
    _, want = training.reference_step(model, x, t, "keras")
    with pytest.raises(AssertionError, match="moving_mean"):
        assert_close(after[("k", "moving_mean")], want[("k", "moving_mean")], "float32", what="k moving_mean")


def test_swapped_explicit_pads_and_concatenate_axis_are_caught(monkeypatch):
    model = model_of("conv1d explicit grouped")
    x = data(model)
    real = keras_port.keras.layers.ZeroPadding1D
    monkeypatch.setattr(keras_port.keras.layers, "ZeroPadding1D", lambda p, **k: real(tuple(reversed(p)), **k))
    assert _fails(model, x)
    monkeypatch.undo()
    model = model_of("concatenate channels")
    real_cat = keras_port.keras.layers.Concatenate
    monkeypatch.setattr(keras_port.keras.layers, "Concatenate", lambda axis=-1, **k: real_cat(axis=2 if axis == -1 else axis, **k))
    try:
        bad = _fails(model, data(model))
    except ValueError:  # Keras refuses the shapes: also caught
        bad = True
    assert bad
