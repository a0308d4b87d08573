"""Every converter in impls/convert.py, both ways, on the arrays alone: canonical -> framework layout ->
canonical, and framework layout (random arrays, not made by our converter) -> canonical -> framework
layout, exactly. Distinct, non-zero biases everywhere. Where a layout cannot hold what canonical holds
(Keras' single GRU bias without reset_after) the round trip is the stated projection, exactly.
verify/test_roundtrip_layers.py and test_roundtrip_models.py then run the same facts through the
frameworks' own layers, on weights and on gradients."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from impls import convert
from impls.contract.models import cnn_feature_shape
from impls.contract.spec import GRUWeights, init_conv, init_dense, init_gru, random_array
from impls.model import seed as seed_models
from impls.ports import torch_port
from impls.primitives import numpy_impl as ref
from verify.conftest import load

I, H = 5, 4
W = init_gru(I, H, seed=3)
GRU_SMALL = {"input_size": 5, "units": (4, 3), "classes": 6, "seq_len": 7}
CNN_SMALL = {"image": (14, 12, 2), "filters": (3, 4), "dense_units": 5, "classes": 6}
CNN_FEATURES = cnn_feature_shape(CNN_SMALL["image"], CNN_SMALL["filters"])  # (2, 1, 4): not square, on purpose


def _leaves(tree) -> list[np.ndarray]:
    if isinstance(tree, np.ndarray):
        return [tree]
    if isinstance(tree, dict):
        return [np.asarray(tree[k]) for k in sorted(tree)]
    if isinstance(tree, (list, tuple)):
        return [np.asarray(a) for a in tree]
    out: list[np.ndarray] = []
    tree.map(lambda a: out.append(np.asarray(a)) or a)
    return out


def assert_same(a, b, what: str) -> None:
    la, lb = _leaves(a), _leaves(b)
    assert len(la) == len(lb), f"{what}: {len(la)} arrays, expected {len(lb)}"
    for i, (x, y) in enumerate(zip(la, lb)):
        assert x.shape == y.shape, f"{what}: array {i} has shape {x.shape}, expected {y.shape}"
        np.testing.assert_array_equal(x, y, err_msg=f"{what}: array {i}")


def test_the_test_weights_have_distinct_non_zero_biases():
    """Guard for the data: a bias of zeros, or b_x == b_h, would hide a dropped or doubled bias."""
    assert np.all(W.b_x != 0) and np.all(W.b_h != 0) and not np.allclose(W.b_x, W.b_h)
    assert len(np.unique(np.concatenate([W.b_x, W.b_h]))) == 6 * H and I != H
    assert CNN_FEATURES[0] != CNN_FEATURES[1], "a square feature map would hide a flatten-order bug"


def _framework_like(arrays: list[np.ndarray], seed: int) -> list[np.ndarray]:
    """Random arrays shaped like a framework's own layout: not produced by our to-converter."""
    g = np.random.default_rng(seed)
    return [g.uniform(-1.0, 1.0, a.shape) for a in arrays]


def _torch_port(model):
    """The torch port's array converters of a whole model (impls/ports/torch_port.state_dict / canonical: no torch)."""
    return model, torch_port.state_dict, lambda state: model.with_parameters(torch_port.canonical(model, state))


def _keras_port(model, grads: bool = False):
    """The Keras port's array converters of a whole model (impls/ports/keras_port.arrays / canonical)."""

    def kp():
        load("keras")  # skips with the reason where Keras is not importable
        from impls.ports import keras_port

        return keras_port

    return (model, lambda m: kp().arrays(m), lambda a: model.with_parameters(kp().canonical(model, a, grads)))


# name: (canonical value, canonical -> framework, framework -> canonical)
ROUND_TRIPS: dict[str, tuple[object, Callable, Callable]] = {
    "gru-torch": (W, convert.gru_to_torch, convert.gru_from_torch),
    "gru-keras-reset_after": (W, lambda w: convert.gru_to_keras(w, True), lambda k: convert.gru_from_keras(k, True)),
    "gru-onnx": (W, convert.gru_to_onnx, lambda o: convert.gru_from_onnx(o["W"], o["R"], o["B"])),
    "gru-grads-keras-reset_after": (W, lambda g: convert.gru_grads_to_keras(g, True),
                                    lambda k: convert.gru_grads_from_keras(k, True)),
    "conv-oihw": (init_conv(3, 2, 4, 5, seed=1).kernel, convert.hwio_to_oihw, convert.oihw_to_hwio),
    "conv-oihw-groups3": (init_conv(3, 2, 6, 9, seed=2, groups=3).kernel, convert.hwio_to_oihw, convert.oihw_to_hwio),
    "conv-depthwise-x2": (init_conv(2, 3, 4, 8, seed=3, groups=4).kernel,
                          lambda k: convert.grouped_to_depthwise(k, 4), convert.depthwise_to_grouped),
    "nhwc-nchw": (random_array((2, 6, 7, 3), 4), convert.nhwc_to_nchw, convert.nchw_to_nhwc),
    "dense-torch": (init_dense(7, 3, seed=5).kernel, convert.dense_to_torch, convert.dense_from_torch),
    "flatten-rows": (random_array((5 * 4 * 6, 7), 6), lambda k: convert.flatten_rows_nhwc_to_nchw(k, (5, 4, 6)),
                     lambda k: convert.flatten_rows_nchw_to_nhwc(k, (5, 4, 6))),
    "pads-onnx": (((1, 2), (3, 0)), lambda p: convert.pads_to_onnx((1, 2, 3, 0)), convert.pads_from_onnx),
    "seed-gru-torch": _torch_port(seed_models.seed_gru(7, **GRU_SMALL)),
    "seed-gru-keras": _keras_port(seed_models.seed_gru(8, **GRU_SMALL)),
    "seed-cnn-torch": _torch_port(seed_models.seed_cnn(9, **CNN_SMALL)),
    "seed-cnn-keras": _keras_port(seed_models.seed_cnn(10, **CNN_SMALL)),
}  # fmt: skip


@pytest.mark.parametrize("name", list(ROUND_TRIPS))
def test_canonical_to_framework_and_back_is_exact(name):
    value, to, back = ROUND_TRIPS[name]
    out = back(to(value))
    if isinstance(value, tuple):
        assert out == value
    else:
        assert_same(out, value, name)


@pytest.mark.parametrize("name", [n for n in ROUND_TRIPS if n != "pads-onnx"])
def test_framework_layout_to_canonical_and_back_is_exact(name):
    value, to, back = ROUND_TRIPS[name]
    layout = to(value)
    arrays = _framework_like(_leaves(layout), seed=len(name))
    if isinstance(layout, dict):
        fresh = dict(zip(sorted(layout), arrays))
    elif isinstance(layout, list):
        fresh = arrays
    else:
        fresh = arrays[0]
    assert_same(to(back(fresh)), fresh, name)


def test_onnx_pads_round_trip_and_order():
    """ONNX lists the begins, then the ends: [top, left, bottom, right]; torch's F.pad runs from the last axis."""
    assert convert.pads_to_onnx((1, 2, 3, 4)) == [1, 3, 2, 4]
    assert convert.pads_from_onnx([1, 3, 2, 4]) == ((1, 2), (3, 4))
    assert convert.pads_to_torch((1, 2, 3, 4)) == (3, 4, 1, 2)


# --------------------------------------------------------------------------- Keras' single GRU bias


def test_keras_single_bias_round_trip_is_the_stated_projection():
    """GRU(reset_after=False) holds one bias: canonical -> Keras -> canonical is keras_single_bias exactly
    (b_x + b_h, 0), never b_h doubled or dropped; Keras -> canonical -> Keras is exact."""
    back = convert.gru_from_keras(convert.gru_to_keras(W, reset_after=False), reset_after=False)
    assert_same(back, convert.keras_single_bias(W), "keras reset_before round trip")
    np.testing.assert_array_equal(back.b_x, W.b_x + W.b_h)
    np.testing.assert_array_equal(back.b_h, 0.0)
    keras_own = _framework_like(convert.gru_to_keras(W, reset_after=False), seed=11)
    assert_same(convert.gru_to_keras(convert.gru_from_keras(keras_own, False), False), keras_own, "keras -> canonical -> keras")


@pytest.mark.parametrize("variant", ["reset_before", "chung", "seed"])
def test_the_projection_changes_no_output_where_the_biases_only_add(variant):
    x = random_array((2, 6, I), 12)
    h0 = random_array((2, H), 13, low=-0.5, high=0.5)
    a, b = (ref.gru(x, w, variant, h0)[0] for w in (W, convert.keras_single_bias(W)))
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-15)


def test_the_projection_is_a_different_model_for_reset_after():
    x = random_array((2, 6, I), 14)
    a, b = (ref.gru(x, w, "reset_after")[0] for w in (W, convert.keras_single_bias(W)))
    assert np.abs(a - b).max() > 1e-3


def test_keras_single_bias_gradients_are_one_bias_never_two():
    """Where only b_x + b_h enters, both canonical gradients equal dL/d(bias): to Keras it is g_b_x (not the
    sum of the two), and back from Keras both b_x and b_h take it."""
    x, dy = random_array((3, 5, I), 15), random_array((3, 5, H), 16)
    g = ref.gru_vjp(x, W, "reset_before", dy)
    cg = GRUWeights(g["W"], g["U"], g["b_x"], g["b_h"])
    np.testing.assert_array_equal(cg.b_x, cg.b_h)
    k = convert.gru_grads_to_keras(cg, reset_after=False)
    np.testing.assert_array_equal(k[2], cg.b_x)
    assert_same(convert.gru_grads_from_keras(k, reset_after=False), cg, "keras single-bias gradients round trip")


def test_seed_gru_model_through_keras_reset_before_is_the_projection_per_layer():
    """The whole seed GRU model in Keras' GRU(reset_after=False): each layer reads back as keras_single_bias."""
    m, to, back = _keras_port(seed_models.seed_gru(17, variant="reset_before", **GRU_SMALL))
    got = back(to(m))
    for name in ("gru1", "gru2"):
        w = m.layers[m.layer_index(name)].weights
        want = convert.keras_single_bias(GRUWeights(w["W"], w["U"], w["b_x"], w["b_h"]))
        got_w = got.layers[got.layer_index(name)].weights
        assert_same(GRUWeights(got_w["W"], got_w["U"], got_w["b_x"], got_w["b_h"]), want, f"seed GRU {name} through keras reset_before")
    assert_same(got.layers[2].weights, m.layers[2].weights, "the dense layer")


def test_seed_models_round_trip_through_both_frameworks_at_full_size():
    """The seed's own sizes (square 5x5x64 features)."""
    for m in (seed_models.seed_gru(seed=1), seed_models.seed_cnn(seed=2)):
        for _, to, back in (_torch_port(m), _keras_port(m)):
            assert_same(back(to(m)), m, m.name)
