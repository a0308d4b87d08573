"""How the zoo prepares a Keras source (reports/zoo_models.py), on a small model with keras.applications
EfficientNet's stem (Rescaling(1/255), then Normalization(axis=-1) built without statistics): its Normalization's
stored mean and variance are drawn at random (Keras 3 keeps them in `adapt_mean` / `adapt_variance`; `mean` and
`variance` are tensors made from those, not variables), and the float64 Keras model the float64 ports are compared
with computes the model's own constants in float64 (TensorFlow's cast of a Python float to float64 goes through
float32) with the statistics it was given; so does a Keras port's float64 run in the zoo's loader (reports/zoo.py
LOADER), whose Rescaling constants are Python numbers and lists in a float32 port's file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from impls import frameworks
from reports import zoo, zoo_models

keras = frameworks.load("keras")

SHAPE = (3, 5, 6, 3)
ENTRY = zoo_models.Entry("keras/stem", "keras", "a small EfficientNet stem", SHAPE, False, 0.0, 255.0)


def _stem():
    keras.utils.set_random_seed(0)
    i = keras.Input(SHAPE[1:])
    y = keras.layers.Rescaling(1.0 / 255.0)(i)
    y = keras.layers.Normalization(axis=-1)(y)
    y = keras.layers.Rescaling([0.1, 0.7, 1.3], offset=[0.1, -0.2, 0.3])(y)  # per channel, none exact in float32
    return keras.Model(i, keras.layers.Conv2D(4, 3, name="conv")(y))


def _x() -> np.ndarray:
    return np.random.default_rng(5).uniform(0.0, 255.0, SHAPE)


def _reference(model, x: np.ndarray) -> np.ndarray:
    """The stem in float64 NumPy with the model's stored weights and its constants as written (1/255, 0.1, ...)."""
    norm = next(la for la in model.layers if isinstance(la, keras.layers.Normalization))
    mean, var = (np.asarray(v.numpy(), np.float64) for v in (norm.adapt_mean, norm.adapt_variance))
    y = (x * (1.0 / 255.0) - mean) / np.maximum(np.sqrt(var), 1e-7)
    y = y * np.array([0.1, 0.7, 1.3]) + np.array([0.1, -0.2, 0.3])
    k, b = (np.asarray(w, np.float64) for w in model.get_layer("conv").get_weights())
    out = np.zeros((SHAPE[0], SHAPE[1] - 2, SHAPE[2] - 2, 4))
    for i in range(3):
        for j in range(3):
            out += np.einsum("bhwc,co->bhwo", y[:, i : i + SHAPE[1] - 2, j : j + SHAPE[2] - 2], k[i, j])
    return out + b


def _stats(model) -> tuple[np.ndarray, np.ndarray]:
    norm = next(la for la in model.layers if isinstance(la, keras.layers.Normalization))
    return np.asarray(norm.adapt_mean.numpy()), np.asarray(norm.adapt_variance.numpy())


def test_the_normalization_statistics_are_drawn_seeded_and_used(tmp_path):
    model = _stem()
    assert [a.tolist() for a in _stats(model)] == [[0.0] * 3, [1.0] * 3]  # weights=None's constants
    zoo_models._randomise_keras(model, ENTRY)
    mean, var = _stats(model)
    assert len(set(mean.tolist())) == 3 and len(set(var.tolist())) == 3, (mean, var)
    assert np.all(np.abs(mean) <= 0.1) and np.all((var >= 0.5) & (var <= 1.5)), (mean, var)
    again = _stem()
    zoo_models._randomise_keras(again, ENTRY)
    np.testing.assert_array_equal(np.stack(_stats(again)), np.stack([mean, var]))  # seeded
    x = _x()
    want = _reference(model, x)
    scale = np.max(np.abs(want))
    got = np.asarray(model(x.astype(np.float32)), np.float64)  # the drawn statistics are the ones computed with
    assert np.max(np.abs(got - want)) / scale < 1e-5
    model.save(tmp_path / "net.keras")  # and the ones saved
    loaded = keras.saving.load_model(tmp_path / "net.keras")
    np.testing.assert_array_equal(np.stack(_stats(loaded)), np.stack([mean, var]))
    assert np.max(np.abs(np.asarray(loaded(x.astype(np.float32)), np.float64) - want)) / scale < 1e-5


def test_the_float64_keras_model_computes_the_constants_and_statistics_in_float64(tmp_path):
    model = _stem()
    zoo_models._randomise_keras(model, ENTRY)
    model.save(tmp_path / "net.keras")
    model = keras.saving.load_model(tmp_path / "net.keras")  # as prepare reads it
    x = _x()
    want = _reference(model, x)
    got = np.asarray(zoo_models._keras_float64(model)(x, training=False))
    assert got.dtype == np.float64
    err = np.max(np.abs(got - want)) / np.max(np.abs(want))
    assert err < 1e-13, err  # old code: 1/255 and 0.1 ... through float32 (~6e-8), or the statistics 0 and 1 (~1)


def test_a_python_float_cast_to_float64_by_tensorflow_goes_through_float32():
    """Why the float64 model is given float64 arrays: the TensorFlow behaviour the fix exists for (issue 35938). Where
    TensorFlow stops doing it, this fails, and _keras_float64's Rescaling line is no longer needed."""
    cast = frameworks.load_attr("keras.src.backend.tensorflow.core", "cast")
    assert float(np.asarray(cast(1.0 / 255.0, "float64"))) == float(np.float32(1.0 / 255.0)) != 1.0 / 255.0
    assert float(np.asarray(cast(np.asarray(1.0 / 255.0), "float64"))) == 1.0 / 255.0


def test_the_loader_runs_a_keras_port_s_rescaling_in_float64_with_its_constants_as_written(tmp_path):
    keras.utils.set_random_seed(1)
    i = keras.Input((5,))
    y = keras.layers.Rescaling(1.0 / 6.0, offset=0.1)(keras.layers.Dense(3, name="dense")(i))  # hard sigmoid's
    y = keras.layers.Rescaling([0.1, 0.7, 1.3], offset=[0.3, -0.2, 0.1])(y)
    keras.Model(i, y).save(tmp_path / "net.keras")
    x = np.random.default_rng(9).uniform(-1, 1, (4, 5)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    dense = keras.saving.load_model(tmp_path / "net.keras").get_layer("dense")
    k, b = (np.asarray(w, np.float64) for w in dense.get_weights())
    ref = ((x.astype(np.float64) @ k + b) * (1.0 / 6.0) + 0.1) * np.array([0.1, 0.7, 1.3]) + np.array([0.3, -0.2, 0.1])
    r = zoo.run(zoo.loader_command("keras", "net.keras"), tmp_path, 300, 0, isolated=True)
    assert r["rc"] == 0, r["stderr"][-2000:]
    assert json.loads(r["stdout"].strip().splitlines()[-1])["float64"] == "saved"
    assert 0 < zoo.rel_error(np.load(tmp_path / "y.npy"), ref) < 1e-6
    err = zoo.rel_error(np.load(tmp_path / "y64.npy"), ref)
    assert err < 1e-15, err  # old loader: 1/6, 0.1 ... through float32, ~1e-8


if __name__ == "__main__":
    pytest.main([__file__, "-q"])
