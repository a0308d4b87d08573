"""A port Keras -> canonical -> PyTorch of both seed models gives the same outputs.

The Keras models are built exactly as the seed's section 4 writes them, and given random weights in
Keras' own layout (not through our to-Keras converter), so only the Keras -> canonical -> torch path
is trusted here. Without the flatten permutation the CNN port is measurably wrong."""

from __future__ import annotations

import numpy as np
import pytest

from impls import convert
from impls.contract.models import SeedCNNParams
from impls.contract.spec import DenseWeights, random_array
from impls.contract.tolerance import assert_close, error_stats
from verify.conftest import load


def _randomise(model, seed: int) -> list[np.ndarray]:
    g = np.random.default_rng(seed)
    weights = [g.uniform(-0.3, 0.3, w.shape).astype(w.dtype) for w in model.get_weights()]
    model.set_weights(weights)
    return weights


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_keras_seed_gru_ported_to_torch_gives_the_same_outputs(dtype):
    keras_b, torch_b = load("keras"), load("torch_nn")
    model = keras_b.build_seed_gru(dtype=dtype)
    weights = _randomise(model, 1)
    x = random_array((3, 100, 64), 2, dtype=dtype)
    expected = keras_b.to_numpy(model(x, training=False))
    params = convert.seed_gru_from_keras(weights, reset_after=True)
    got = torch_b.to_numpy(torch_b.seed_gru_model(params, dtype=dtype)(torch_b.asarray(x, dtype)))
    assert_close(got, expected, dtype, work="seed_gru_model", what="keras->torch GRU port")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_keras_seed_cnn_ported_to_torch_gives_the_same_outputs(dtype):
    keras_b, torch_b = load("keras"), load("torch_nn")
    model = keras_b.build_seed_cnn(dtype=dtype)
    weights = _randomise(model, 3)
    x = random_array((4, 28, 28, 1), 4, dtype=dtype, low=0.0, high=1.0)
    expected = keras_b.to_numpy(model(x, training=False))
    params = convert.seed_cnn_from_keras(weights)
    got = torch_b.to_numpy(torch_b.seed_cnn_model(params, dtype=dtype)(torch_b.asarray(x, dtype)))
    assert_close(got, expected, dtype, work="seed_cnn_model", what="keras->torch CNN port")

    # the same port with dense1's rows left in Keras' (h, w, c) order, as a naive port would:
    # torch_builtin permutes rows itself, so hand it rows pre-permuted the other way to cancel that
    naive = SeedCNNParams(params.conv1, params.conv2,
                          DenseWeights(convert.flatten_rows_nchw_to_nhwc(params.dense1.kernel, (5, 5, 64)),
                                       params.dense1.bias), params.dense2)  # fmt: skip
    wrong = torch_b.to_numpy(torch_b.seed_cnn_model(naive, dtype=dtype)(torch_b.asarray(x, dtype)))
    assert error_stats(wrong, expected).max_abs > 1e-2
