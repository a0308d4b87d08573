"""A port Keras -> description -> PyTorch of both seed models gives the same outputs.

The Keras models are built exactly as the seed's section 4 writes them, and given random weights in
Keras' own layout (not through our to-Keras converter), so only the Keras importer -> torch port path
is trusted here. Without the flatten permutation the CNN port is measurably wrong."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from impls import convert
from impls.contract.spec import random_array
from impls.contract.tolerance import assert_close, error_stats
from verify.conftest import load, load_framework


def _randomise(model, seed: int) -> list[np.ndarray]:
    g = np.random.default_rng(seed)
    weights = [g.uniform(-0.3, 0.3, w.shape).astype(w.dtype) for w in model.get_weights()]
    model.set_weights(weights)
    return weights


def _ported(model, input_shape: tuple, dtype: str):
    """The Keras model -> the Keras importer's description -> the torch port, loaded by its own load()."""
    from impls.importers import keras_import
    from impls.ports import torch_port

    description = keras_import.from_model(model, input_shape, "the seed's Keras model").model
    return description, torch_port.load_port(description, dtype)[0]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_keras_seed_gru_ported_to_torch_gives_the_same_outputs(dtype):
    keras_b, torch = load("keras"), load_framework("torch")
    model = keras_b.build_seed_gru(dtype=dtype)
    _randomise(model, 1)
    x = random_array((3, 100, 64), 2, dtype=dtype)
    expected = keras_b.to_numpy(model(x, training=False))
    _, net = _ported(model, x.shape, dtype)
    got = net(torch.from_numpy(x)).detach().numpy()
    assert_close(got, expected, dtype, work="seed_gru_model", what="keras->torch GRU port")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_keras_seed_cnn_ported_to_torch_gives_the_same_outputs(dtype):
    keras_b, torch = load("keras"), load_framework("torch")
    from impls.ports import torch_port

    model = keras_b.build_seed_cnn(dtype=dtype)
    _randomise(model, 3)
    x = random_array((4, 28, 28, 1), 4, dtype=dtype, low=0.0, high=1.0)
    expected = keras_b.to_numpy(model(x, training=False))
    description, net = _ported(model, x.shape, dtype)
    got = net(torch.from_numpy(x)).detach().numpy()
    assert_close(got, expected, dtype, work="seed_cnn_model", what="keras->torch CNN port")

    # the same port with dense1's rows left in Keras' (h, w, c) order, as a naive port would: the torch port
    # permutes the rows itself, so hand it rows pre-permuted the other way to cancel that
    i = next(i for i, la in enumerate(description.layers) if la.kind == "dense")  # the Dense after the Flatten
    dense = description.layers[i]
    naive_rows = {**dense.weights, "kernel": convert.flatten_rows_nchw_to_nhwc(dense.weights["kernel"], (5, 5, 64))}
    naive, _ = torch_port.load_port(description.replace_layer(i, dataclasses.replace(dense, weights=naive_rows)), dtype)
    wrong = naive(torch.from_numpy(x)).detach().numpy()
    assert error_stats(wrong, expected).max_abs > 1e-2
