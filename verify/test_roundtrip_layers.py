"""Converters through the frameworks' own layers, both ways, on weights and on gradients.

Each layer starts from its framework's own initialisation (plus random, distinct biases where the
framework would start them at zero), is read back to canonical through impls/convert.py, and must then
compute the same in the NumPy reference and in another framework's layer; its gradients, in its own
layout, read back to the reference's vjp, and the reference's vjp converted forward equals them. Float64
throughout, compared through the one tolerance table. A layout read back wrongly (gate order, a missing
transpose, a doubled or dropped bias, a wrong group split) fails here even where no forward test looks.
"""

from __future__ import annotations

import numpy as np
import pytest

from impls import BackendUnavailable, convert
from impls.contract.spec import GRUWeights, random_array
from impls.primitives import numpy_impl as ref
from verify.conftest import load_framework
from verify.headroom import check

B, T, I, H = 3, 6, 5, 4
X = random_array((B, T, I), 1)
H0 = random_array((B, H), 2, low=-0.5, high=0.5)
DY, DH = random_array((B, T, H), 3), random_array((B, H), 4)


@pytest.fixture(scope="module")
def torch():
    return load_framework("torch")


@pytest.fixture(scope="module")
def keras():
    return load_framework("keras")


@pytest.fixture(scope="module")
def onnx_ref():
    try:
        from impls.runtime import onnx_ref
    except BackendUnavailable as e:
        pytest.skip(str(e))
    return onnx_ref


def same(got, want, impl: str, what: str) -> None:
    check(np.asarray(got), np.asarray(want), "float64", impl, what=what)


def _canon(g: dict) -> GRUWeights:
    return GRUWeights(g["W"], g["U"], g["b_x"], g["b_h"])


def _t(torch, a):
    return torch.from_numpy(np.ascontiguousarray(a))


# --------------------------------------------------------------------------- GRU


def _torch_gru(torch):
    torch.manual_seed(5)
    return torch.nn.GRU(I, H, batch_first=True, dtype=torch.float64)  # its own uniform init: every bias distinct


def _keras_gru(keras, reset_after: bool):
    layer = keras.layers.GRU(H, return_sequences=True, return_state=True, reset_after=reset_after, dtype="float64",
                             seed=6)  # fmt: skip
    layer.build((None, None, I))
    bias = layer.cell.bias  # Keras starts biases at zero: give them distinct values
    bias.assign(np.random.default_rng(7).uniform(-0.5, 0.5, tuple(bias.shape)))
    return layer


def test_torch_gru_read_back_computes_the_same_in_numpy_keras_and_onnx(torch, keras, onnx_ref):
    layer = _torch_gru(torch)
    y_t, h_t = (a.detach().numpy() for a in layer(_t(torch, X), _t(torch, H0[None])))
    w = convert.gru_from_torch({k: v.detach().numpy() for k, v in layer.state_dict().items()})
    same(ref.gru(X, w, "reset_after", H0)[0], y_t, "torch_nn", "nn.GRU -> canonical -> NumPy")
    kl = keras.layers.GRU(H, return_sequences=True, reset_after=True, dtype="float64")
    kl.build((None, None, I))
    kl.set_weights(convert.gru_to_keras(w, reset_after=True))
    same(kl(X, initial_state=H0), y_t, "keras", "nn.GRU -> canonical -> keras.layers.GRU")
    same(onnx_ref.gru(X, w, "reset_after", H0)[0], y_t, "numpy", "nn.GRU -> canonical -> ONNX GRU")
    same(h_t[0], y_t[:, -1], "torch_nn", "nn.GRU's h_n is its last output")


@pytest.mark.parametrize("reset_after", [True, False], ids=["reset_after", "reset_before"])
def test_keras_gru_read_back_computes_the_same_elsewhere(keras, torch, onnx_ref, reset_after):
    layer = _keras_gru(keras, reset_after)
    y_k = np.asarray(layer(X, initial_state=H0)[0])
    own = [np.asarray(a) for a in layer.get_weights()]
    w = convert.gru_from_keras(own, reset_after)
    variant = "reset_after" if reset_after else "reset_before"
    same(ref.gru(X, w, variant, H0)[0], y_k, "keras", f"keras GRU({variant}) -> canonical -> NumPy")
    same(onnx_ref.gru(X, w, variant, H0)[0], y_k, "numpy", f"keras GRU({variant}) -> canonical -> ONNX GRU")
    for a, b in zip(convert.gru_to_keras(w, reset_after), own):
        np.testing.assert_array_equal(a, b)  # what Keras holds comes back exactly
    if reset_after:
        tl = torch.nn.GRU(I, H, batch_first=True, dtype=torch.float64)
        tl.load_state_dict({k: _t(torch, v) for k, v in convert.gru_to_torch(w).items()})
        same(tl(_t(torch, X), _t(torch, H0[None]))[0].detach().numpy(), y_k, "torch_nn", "keras GRU -> canonical -> nn.GRU")


def test_torch_gru_gradients_read_back_both_ways(torch):
    layer = _torch_gru(torch)
    x, h0 = _t(torch, X).requires_grad_(True), _t(torch, H0[None]).requires_grad_(True)
    y, h = layer(x, h0)
    (torch.sum(y * _t(torch, DY)) + torch.sum(h[0] * _t(torch, DH))).backward()
    grads = {k: p.grad.numpy() for k, p in layer.named_parameters()}
    w = convert.gru_from_torch({k: v.detach().numpy() for k, v in layer.state_dict().items()})
    g = ref.gru_vjp(X, w, "reset_after", DY, H0, DH)
    back = convert.gru_from_torch(grads)
    for k in ("W", "U", "b_x", "b_h"):
        same(getattr(back, k), g[k], "torch_nn", f"nn.GRU gradient -> canonical {k}")
    for k, v in convert.gru_to_torch(_canon(g)).items():
        same(v, grads[k], "torch_nn", f"reference gradient -> torch {k}")
    same(x.grad.numpy(), g["x"], "torch_nn", "nn.GRU dx")


@pytest.mark.parametrize("reset_after", [True, False], ids=["reset_after", "reset_before"])
def test_keras_gru_gradients_read_back_both_ways(keras, reset_after):
    tf = load_framework("tensorflow")
    layer = _keras_gru(keras, reset_after)
    x, h0 = tf.constant(X), tf.constant(H0)
    cell = layer.cell
    with tf.GradientTape() as tape:
        y, h = layer(x, initial_state=h0)
        loss = tf.reduce_sum(y * DY) + tf.reduce_sum(h * DH)
    grads = [np.asarray(a) for a in tape.gradient(loss, [cell.kernel, cell.recurrent_kernel, cell.bias])]
    variant = "reset_after" if reset_after else "reset_before"
    w = convert.gru_from_keras([np.asarray(a) for a in layer.get_weights()], reset_after)
    g = ref.gru_vjp(X, w, variant, DY, H0, DH)
    back = convert.gru_grads_from_keras(grads, reset_after)
    for k in ("W", "U", "b_x", "b_h"):
        same(getattr(back, k), g[k], "keras", f"keras GRU({variant}) gradient -> canonical {k}")
    for i, (a, b) in enumerate(zip(convert.gru_grads_to_keras(_canon(g), reset_after), grads)):
        same(a, b, "keras", f"reference gradient -> keras GRU({variant}) array {i}")


def test_onnx_layout_read_back_computes_what_onnx_does(onnx_ref):
    """ONNX-layout arrays made here (W (1, 3H, I), R (1, 3H, H), B (1, 6H)), read by gru_from_onnx."""
    g = np.random.default_rng(8)
    W, R, Bias = g.uniform(-0.5, 0.5, (1, 3 * H, I)), g.uniform(-0.5, 0.5, (1, 3 * H, H)), g.uniform(-0.5, 0.5, (1, 6 * H))
    w = convert.gru_from_onnx(W, R, Bias)
    for variant in ("reset_before", "reset_after"):
        same(ref.gru(X, w, variant, H0)[0], onnx_ref.gru(X, w, variant, H0)[0], "numpy", f"ONNX layout -> canonical {variant}")


# --------------------------------------------------------------------------- conv and dense

XI = random_array((2, 8, 7, 6), 9)  # NHWC


def test_torch_grouped_conv_read_back_both_ways(torch, keras):
    """nn.Conv2d(6, 9, (3, 2), groups=3, dilation=(2, 1), padding=(1, 0)) -> canonical HWIO (I = 2) -> NumPy and
    keras Conv2D(groups=3); gradients of the OIHW weight back to the reference's and forward again."""
    torch.manual_seed(10)
    conv = torch.nn.Conv2d(6, 9, (3, 2), groups=3, dilation=(2, 1), padding=(1, 0), dtype=torch.float64)
    xt = _t(torch, convert.nhwc_to_nchw(XI)).requires_grad_(True)
    y_t = conv(xt)
    dy = random_array(tuple(y_t.shape), 11)
    torch.sum(y_t * _t(torch, dy)).backward()
    y_t = convert.nchw_to_nhwc(y_t.detach().numpy())
    k, b = convert.oihw_to_hwio(conv.weight.detach().numpy()), conv.bias.detach().numpy()
    opts = {"padding": ((1, 1), (0, 0)), "dilation": (2, 1), "groups": 3}
    same(ref.conv2d(XI, k, b, **opts), y_t, "torch_nn", "nn.Conv2d(groups=3) -> canonical -> NumPy")
    kl = keras.layers.Conv2D(9, (3, 2), groups=3, dilation_rate=(2, 1), dtype="float64")
    kl.build((None, None, None, 6))
    kl.set_weights([k, b])
    same(kl(np.pad(XI, ((0, 0), (1, 1), (0, 0), (0, 0)))), y_t, "keras", "nn.Conv2d(groups=3) -> canonical -> keras Conv2D")
    g = ref.conv2d_vjp(XI, k, b, convert.nchw_to_nhwc(dy), **opts)
    same(convert.oihw_to_hwio(conv.weight.grad.numpy()), g["kernel"], "torch_nn", "nn.Conv2d weight gradient -> HWIO")
    same(convert.hwio_to_oihw(g["kernel"]), conv.weight.grad.numpy(), "torch_nn", "reference kernel gradient -> OIHW")
    same(convert.nchw_to_nhwc(xt.grad.numpy()), g["x"], "torch_nn", "nn.Conv2d dx")


def test_keras_depthwise_conv_read_back_both_ways(keras, torch):
    """keras DepthwiseConv2D(3, depth_multiplier=2, strides=2, padding='same') -> canonical grouped HWIO
    (groups = 6) -> NumPy and nn.Conv2d(6, 12, groups=6); gradients both ways."""
    tf = load_framework("tensorflow")
    dw = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2, dtype="float64",
                                      depthwise_initializer=keras.initializers.GlorotUniform(seed=12))
    dw.build((None, None, None, 6))
    dw.bias.assign(np.random.default_rng(13).uniform(-0.5, 0.5, 12))
    x = tf.constant(XI)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y_k = dw(x)
        dy = random_array(tuple(y_k.shape), 14)
        loss = tf.reduce_sum(y_k * dy)
    gx, gk = (np.asarray(a) for a in tape.gradient(loss, [x, dw.kernel]))
    y_k = np.asarray(y_k)
    k, b = convert.depthwise_to_grouped(np.asarray(dw.kernel)), np.asarray(dw.bias)
    same(ref.conv2d(XI, k, b, 2, "same", groups=6), y_k, "keras", "DepthwiseConv2D -> canonical -> NumPy")
    tconv = torch.nn.Conv2d(6, 12, 3, stride=2, groups=6, dtype=torch.float64)
    tconv.load_state_dict({"weight": _t(torch, convert.hwio_to_oihw(k)), "bias": _t(torch, b)})
    pads = convert.pads_to_torch((0, 1, 1, 1))  # TensorFlow's 'same' on 8 x 7, stride 2, kernel 3
    y_t = tconv(torch.nn.functional.pad(_t(torch, convert.nhwc_to_nchw(XI)), pads)).detach().numpy()
    same(convert.nchw_to_nhwc(y_t), y_k, "torch_nn", "DepthwiseConv2D -> canonical -> nn.Conv2d(groups=6)")
    g = ref.conv2d_vjp(XI, k, b, dy, 2, "same", groups=6)
    same(convert.depthwise_to_grouped(gk), g["kernel"], "keras", "DepthwiseConv2D kernel gradient -> grouped HWIO")
    same(convert.grouped_to_depthwise(g["kernel"], 6), gk, "keras", "reference kernel gradient -> depthwise")
    same(gx, g["x"], "keras", "DepthwiseConv2D dx")


def test_torch_linear_read_back_both_ways(torch, keras):
    torch.manual_seed(15)
    lin = torch.nn.Linear(7, 3, dtype=torch.float64)
    x = random_array((4, 7), 16)
    y_t = lin(_t(torch, x))
    dy = random_array((4, 3), 17)
    torch.sum(y_t * _t(torch, dy)).backward()
    k, b = convert.dense_from_torch(lin.weight.detach().numpy()), lin.bias.detach().numpy()
    dense = keras.layers.Dense(3, dtype="float64")
    dense.build((None, 7))
    dense.set_weights([k, b])
    same(dense(x), y_t.detach().numpy(), "keras", "nn.Linear -> canonical -> keras Dense")
    g = ref.dense_vjp(x, k, b, dy)
    same(convert.dense_from_torch(lin.weight.grad.numpy()), g["kernel"], "torch_nn", "nn.Linear weight gradient -> (in, out)")
    same(convert.dense_to_torch(g["kernel"]), lin.weight.grad.numpy(), "torch_nn", "reference kernel gradient -> (out, in)")
