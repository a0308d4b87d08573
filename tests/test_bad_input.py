"""Bad input gets a clear error from every implementation: the message names the offending shapes,
or lists the valid names; nothing is silently broadcast."""

from __future__ import annotations

import numpy as np
import pytest

from impls import IMPLEMENTATIONS
from impls.contract.spec import GRUWeights, ShapeError, init_conv, init_dense, init_gru, random_array
from verify.conftest import load

IMPLS = list(IMPLEMENTATIONS)
W = init_gru(5, 4, seed=1)
X = random_array((3, 7, 5), 2)


def _native(mod, w):
    return w.map(lambda a: mod.asarray(a, "float64"))


def _gru(mod, x, w=W, variant="reset_after", h0=None):
    return mod.gru(mod.asarray(x, "float64"), _native(mod, w), variant,
                   h0=None if h0 is None else mod.asarray(h0, "float64"))  # fmt: skip


BAD_GRU = {
    "rank2-x": (lambda: (X[:, 0, :], W, None), r"rank 3.*x\.shape=\(3, 5\)"),
    "features-mismatch": (lambda: (random_array((3, 7, 6), 3), W, None), r"x\.shape\[2\]=6 != W\.shape\[0\]=5"),
    "U-not-H-by-3H": (lambda: (X, GRUWeights(W.W, W.U[:, :8], W.b_x, W.b_h), None), r"U\.shape=\(4, 8\)"),
    "bias-too-short": (lambda: (X, GRUWeights(W.W, W.U, W.b_x[:-1], W.b_h), None), r"b_x\.shape=\(11,\)"),
    "bias-one-broadcastable": (lambda: (X, GRUWeights(W.W, W.U, W.b_x[:1], W.b_h), None), r"b_x\.shape=\(1,\)"),
    "h0-wrong-batch": (lambda: (X, W, np.zeros((2, 4))), r"h0\.shape=\(2, 4\)"),
}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", list(BAD_GRU))
def test_gru_bad_shapes_name_the_shapes(impl, case):
    mod = load(impl)
    make, pattern = BAD_GRU[case]
    x, w, h0 = make()
    with pytest.raises(ShapeError, match=pattern):
        _gru(mod, x, w, h0=h0)


@pytest.mark.parametrize("impl", IMPLS)
def test_unknown_variant_lists_the_valid_ones(impl):
    mod = load(impl)
    with pytest.raises(ValueError, match=r"'lstm'.*seed, reset_before, reset_after, chung"):
        _gru(mod, X, variant="lstm")


@pytest.mark.parametrize("impl", IMPLS)
def test_unknown_padding_lists_the_valid_ones(impl):
    mod = load(impl)
    k = init_conv(3, 3, 2, 4, seed=1)
    x = mod.asarray(random_array((1, 6, 6, 2), 1), "float64")
    with pytest.raises(ValueError, match=r"'full'.*valid, same"):
        mod.conv2d(x, mod.asarray(k.kernel, "float64"), mod.asarray(k.bias, "float64"), padding="full")
    with pytest.raises(ValueError, match=r"'full'.*valid, same"):
        mod.max_pool2d(x, 2, padding="full")


@pytest.mark.parametrize("impl", IMPLS)
def test_conv2d_channel_mismatch_names_the_shapes(impl):
    mod = load(impl)
    k = init_conv(3, 3, 3, 4, seed=1)
    x = mod.asarray(random_array((1, 6, 6, 2), 1), "float64")
    with pytest.raises(ShapeError, match=r"x\.shape=\(1, 6, 6, 2\), kernel\.shape=\(3, 3, 3, 4\)"):
        mod.conv2d(x, mod.asarray(k.kernel, "float64"), mod.asarray(k.bias, "float64"))


@pytest.mark.parametrize("impl", IMPLS)
def test_conv2d_and_pool_reject_rank3_images(impl):
    mod = load(impl)
    k = init_conv(3, 3, 2, 4, seed=1)
    x = mod.asarray(random_array((6, 6, 2), 1), "float64")
    with pytest.raises(ShapeError, match=r"NHWC, rank 4; got rank 3"):
        mod.conv2d(x, mod.asarray(k.kernel, "float64"), mod.asarray(k.bias, "float64"))
    with pytest.raises(ShapeError, match=r"NHWC, rank 4; got rank 3"):
        mod.max_pool2d(x, 2)


@pytest.mark.parametrize("impl", IMPLS)
def test_dense_rejects_mismatch_and_broadcastable_bias(impl):
    mod = load(impl)
    d = init_dense(5, 3, seed=1)
    x = mod.asarray(random_array((2, 4), 1), "float64")
    with pytest.raises(ShapeError, match=r"x\.shape=\(2, 4\), kernel\.shape=\(5, 3\)"):
        mod.dense(x, mod.asarray(d.kernel, "float64"), mod.asarray(d.bias, "float64"))
    x5 = mod.asarray(random_array((2, 5), 1), "float64")
    with pytest.raises(ShapeError, match=r"bias\.shape=\(1,\)"):
        mod.dense(x5, mod.asarray(d.kernel, "float64"), mod.asarray(d.bias[:1], "float64"))


@pytest.mark.parametrize("impl", IMPLS)
def test_seed_conv1d_rejects_a_kernel_for_other_channels(impl):
    mod = load(impl)
    x = mod.asarray(random_array((2, 9, 3), 1), "float64")
    with pytest.raises(ShapeError, match=r"w\.shape=\(4, 2\)"):
        mod.seed_conv1d(x, mod.asarray(random_array((4, 2), 2), "float64"), mod.asarray(np.zeros(3), "float64"))


@pytest.mark.parametrize("impl", IMPLS)
def test_stride_must_be_positive(impl):
    mod = load(impl)
    k = init_conv(3, 3, 2, 4, seed=1)
    x = mod.asarray(random_array((1, 6, 6, 2), 1), "float64")
    with pytest.raises(ValueError, match=r"stride must be >= 1, got 0"):
        mod.conv2d(x, mod.asarray(k.kernel, "float64"), mod.asarray(k.bias, "float64"), stride=0)


@pytest.mark.parametrize("voice", ["torch_nn", "keras"])
@pytest.mark.parametrize("count, args, name", [
    ("gru_param_count", (0, 4, "reset_after"), "I"),
    ("lstm_param_count", (3, -1), "H"),
    ("conv2d_param_count", (0, 3, 1, 4), "kh"),
    ("conv2d_param_count", (3, 3, 2, 4, 0), "groups"),
    ("dense_param_count", (3, 2.0), "n_out"),
])  # fmt: skip
def test_built_layer_counts_refuse_non_positive_sizes_naming_them(voice, count, args, name):
    """Before: Keras counted a GRU on 0 features as 72 parameters and torch a 0x3 kernel as 4."""
    mod = load(voice)
    with pytest.raises(ShapeError, match=rf"{name} must be an int >= 1"):
        getattr(mod, count)(*args)
