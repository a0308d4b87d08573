"""The converters: round trips are exact, gate orders and flatten orders are the documented ones."""

from __future__ import annotations

import numpy as np
import pytest

from impls import convert
from impls.contract.models import cnn_feature_shape, init_seed_cnn, init_seed_gru
from impls.contract.spec import ShapeError, init_conv, init_gru, random_array
from impls.primitives import numpy_impl as ref

W = init_gru(5, 4, seed=3)  # I=5, H=4
H = 4


def _same(a, b):
    for name in ("W", "U", "b_x", "b_h"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_torch_gru_round_trip_is_exact():
    _same(convert.gru_from_torch(convert.gru_to_torch(W)), W)


def test_torch_gru_layout_is_r_z_n_and_transposed():
    """torch.nn.GRU documents weight_ih_l0 as (W_ir|W_iz|W_in), shape (3H, I)."""
    s = convert.gru_to_torch(W)
    assert s["weight_ih_l0"].shape == (3 * H, 5) and s["weight_hh_l0"].shape == (3 * H, H)
    np.testing.assert_array_equal(s["weight_ih_l0"][:H], W.W[:, H : 2 * H].T)  # r first
    np.testing.assert_array_equal(s["weight_ih_l0"][H : 2 * H], W.W[:, :H].T)  # then z
    np.testing.assert_array_equal(s["bias_hh_l0"][2 * H :], W.b_h[2 * H :])  # n last


def test_keras_reset_after_round_trip_is_exact():
    k = convert.gru_to_keras(W, reset_after=True)
    assert k[2].shape == (2, 3 * H)
    _same(convert.gru_from_keras(k, reset_after=True), W)


def test_keras_single_bias_is_exact_for_reset_before_only():
    """Keras GRU(reset_after=False) holds one bias: folding b_x + b_h loses nothing for reset_before,
    whose biases always add, but changes reset_after, where b_hh sits inside r * (...)."""
    folded = convert.gru_from_keras(convert.gru_to_keras(W, reset_after=False), reset_after=False)
    np.testing.assert_array_equal(folded.b_h, 0.0)
    x = random_array((2, 6, 5), 4)
    y0, _ = ref.gru(x, W, "reset_before")
    y1, _ = ref.gru(x, folded, "reset_before")
    np.testing.assert_allclose(y1, y0, rtol=0, atol=1e-15)
    z0, _ = ref.gru(x, W, "reset_after")
    z1, _ = ref.gru(x, folded, "reset_after")
    assert np.max(np.abs(z1 - z0)) > 1e-3


def test_onnx_round_trip_and_layout():
    o = convert.gru_to_onnx(W)
    assert o["W"].shape == (1, 3 * H, 5) and o["R"].shape == (1, 3 * H, H) and o["B"].shape == (1, 6 * H)
    np.testing.assert_array_equal(o["W"][0, :H], W.W[:, :H].T)  # z first, as ONNX's zrh
    _same(convert.gru_from_onnx(o["W"], o["R"], o["B"]), W)


def test_conv_layout_round_trips():
    k = init_conv(3, 2, 4, 5, seed=1).kernel
    assert convert.hwio_to_oihw(k).shape == (5, 4, 3, 2)
    np.testing.assert_array_equal(convert.oihw_to_hwio(convert.hwio_to_oihw(k)), k)
    x = random_array((2, 6, 7, 3), 2)
    np.testing.assert_array_equal(convert.nchw_to_nhwc(convert.nhwc_to_nchw(x)), x)


def test_flatten_permutation_makes_nchw_flatten_match_nhwc():
    x = random_array((3, 5, 4, 6), 5)  # NHWC feature map
    k = random_array((5 * 4 * 6, 7), 6)
    keras_way = x.reshape(3, -1) @ k
    torch_way = convert.nhwc_to_nchw(x).reshape(3, -1) @ convert.flatten_rows_nhwc_to_nchw(k, (5, 4, 6))
    np.testing.assert_allclose(torch_way, keras_way, rtol=1e-13)
    unpermuted = convert.nhwc_to_nchw(x).reshape(3, -1) @ k
    assert np.max(np.abs(unpermuted - keras_way)) > 0.1  # what a port without the permutation gets
    np.testing.assert_array_equal(
        convert.flatten_rows_nchw_to_nhwc(convert.flatten_rows_nhwc_to_nchw(k, (5, 4, 6)), (5, 4, 6)), k
    )


def test_flatten_permutation_rejects_wrong_feature_shape():
    with pytest.raises(ShapeError, match=r"kernel\.shape=\(10, 2\).*\(2, 2, 3\)"):
        convert.flatten_rows_nhwc_to_nchw(np.zeros((10, 2)), (2, 2, 3))


def test_seed_cnn_feature_shape_and_parameter_total():
    """28 -> 26 -> 13 -> 11 -> 5: Flatten sees 5x5x64; the canonical weights hold 225,034 numbers."""
    assert cnn_feature_shape() == (5, 5, 64)
    c = init_seed_cnn()
    assert sum(a.size for layer in (c.conv1, c.conv2, c.dense1, c.dense2) for a in (layer.kernel, layer.bias)) == 225_034
    g = init_seed_gru()
    assert sum(np.asarray(a).size for w in (g.gru1, g.gru2) for a in (w.W, w.U, w.b_x, w.b_h)) + 650 == 112_394
