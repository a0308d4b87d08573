"""TensorFlow from primitives: the contract written with tf.matmul, tf.sigmoid, tf.tanh, tf.pad, strided
slices, tf.add_n, tf.reduce_max, tf.reduce_logsumexp, tf.gather and tf.reverse only.

No tf.nn.conv2d, tf.nn.max_pool2d, tf.nn.avg_pool2d, tf.nn.softmax, Keras layers or tf.keras here: those are the built-in
voice (impls/builtin/keras_builtin.py). Gradients are tf.GradientTape over these same primitives.
Every function works eagerly and inside tf.function (with or without XLA): see `compile`.
"""

from __future__ import annotations

from collections.abc import Callable

from ..contract import spec
from ..contract.spec import GRUWeights
from .tf_activations import clip, gelu, gelu_tanh, hard_sigmoid, hard_swish, leaky_relu, relu6, silu
from .tf_conv import _pad, avg_pool2d, avg_pool2d_vjp, conv2d, conv2d_vjp, max_pool2d, max_pool2d_vjp
from .tf_core import _like, _vjp, asarray, device_name, synchronize, tf, tf_dtype, to_numpy
from .tf_seq import (
    concat,
    embedding,
    ids_mask,
    lengths_of,
    lstm,
    mask_steps,
    mean_steps,
    reverse_steps,
    take_steps,
    time_maps,
    values_mask,
)
from .tf_norm import lrn  # issue 24's normalization family
from .tf_attn import mask_scores, matmul, prepend_token  # attention's ops (issue 25)


NAME = "tensorflow"
FRAMEWORK = "tensorflow"
MODE = "eager"
MODES = ("eager", "tf.function", "tf.function(jit_compile=True)")


# --------------------------------------------------------------------------- boundary (dtypes, arrays: tf_core.py)


def compile(fn: Callable, mode: str = MODE) -> Callable:
    """fn as run in `mode`: eager (itself), tf.function, or tf.function compiled by XLA."""
    if mode == "eager":
        return fn
    if mode == "tf.function":
        return tf.function(fn)
    if mode == "tf.function(jit_compile=True)":
        return tf.function(fn, jit_compile=True)
    raise ValueError(f"unknown mode {mode!r}; valid modes: {', '.join(MODES)}")


# --------------------------------------------------------------------------- activations


def relu(x):
    # Autograd of tf.maximum gives relu'(0) = 1 (dy goes to x where x >= 0), not the reference's 0:
    # declared per voice in verify/test_gradients.py (RELU_AT_ZERO).
    return tf.maximum(x, tf.zeros_like(x))


def tanh(x):
    return tf.tanh(x)


def sigmoid(x):
    return tf.sigmoid(x)


def zero_pad2d(x, pads: tuple[int, int, int, int]):
    """NHWC zeros around each image: pads (top, bottom, left, right)."""
    return _pad(x, pads)


def softmax(x, axis: int = -1):
    return tf.exp(x - tf.reduce_logsumexp(x, axis=axis, keepdims=True))


# --------------------------------------------------------------------------- GRU


def gru(x, weights: GRUWeights, variant: str, h0=None):
    """x (B, T, I) -> (y (B, T, H), h_T (B, H)). One matmul projects all timesteps; the loop does the rest."""
    spec.check_variant(variant)
    B, T, I, H = spec.check_gru(x.shape, weights, None if h0 is None else h0.shape)
    W, U, b_x, b_h = (_like(a, x) for a in (weights.W, weights.U, weights.b_x, weights.b_h))
    h = tf.zeros((B, H), dtype=x.dtype) if h0 is None else _like(h0, x)
    U_zr, U_h = U[:, : 2 * H], U[:, 2 * H :]
    b_hzr, b_hh = b_h[: 2 * H], b_h[2 * H :]

    xp = tf.reshape(tf.matmul(tf.reshape(x, (B * T, I)), W) + b_x, (B, T, 3 * H))  # x W + b_x, all steps
    xp = tf.transpose(xp, (1, 0, 2))  # (T, B, 3H): tf.scan walks the first axis

    def step(h, xp_t):  # h (B, H), xp_t (B, 3H) -> h_t (B, H)
        zr = tf.sigmoid(xp_t[:, : 2 * H] + tf.matmul(h, U_zr) + b_hzr)
        z, r = zr[:, :H], zr[:, H:]
        if variant == "reset_after":  # cuDNN, torch.nn.GRU, Keras default
            h_tilde = tf.tanh(xp_t[:, 2 * H :] + r * (tf.matmul(h, U_h) + b_hh))
        else:  # seed, reset_before, chung: reset before the recurrent product
            h_tilde = tf.tanh(xp_t[:, 2 * H :] + tf.matmul(r * h, U_h) + b_hh)
        if variant == "seed":  # (1 - z) * h (+) r * h~, with a (+) b = (a + b) / 2
            return ((1.0 - z) * h + r * h_tilde) / 2.0
        if variant == "chung":
            return (1.0 - z) * h + z * h_tilde
        return z * h + (1.0 - z) * h_tilde

    # tf.scan is a tf.while_loop: a Python loop when eager, one compact loop inside tf.function / XLA.
    ys = tf.scan(step, xp, initializer=h)  # (T, B, H)
    return tf.transpose(ys, (1, 0, 2)), ys[-1]


# --------------------------------------------------------------------------- shapes and reductions (issue 18's kinds)


def reshape(x, shape):
    """Row-major (C order), as NumPy's."""
    return tf.reshape(x, [int(d) for d in shape])


def transpose(x, perm):
    return tf.transpose(x, [int(p) for p in perm])


def mean(x, axes, keepdims: bool = False):
    return tf.reduce_mean(x, axis=[int(a) for a in axes], keepdims=keepdims)


def amax(x, axes, keepdims: bool = False):
    """Its gradient splits dy evenly among tied maxima (the reference sends it to the first)."""
    return tf.reduce_max(x, axis=[int(a) for a in axes], keepdims=keepdims)


def rsqrt(x):
    return tf.math.rsqrt(x)


# --------------------------------------------------------------------------- dense (conv and pools: tf_conv.py)


def dense(x, kernel, bias):
    """x (..., in) @ kernel (in, out) + bias."""
    spec.check_dense(x.shape, kernel.shape, bias.shape)
    k = _like(kernel, x)
    lead = tf.shape(x)[:-1]
    y = tf.matmul(tf.reshape(x, (-1, int(kernel.shape[0]))), k) + _like(bias, x)
    return tf.reshape(y, tf.concat([lead, [int(kernel.shape[1])]], axis=0))


# --------------------------------------------------------------------------- the seed's 1-D equations


def seed_conv1d(x, w, b):
    """Seed section 2.2: y_ij = sum_k w_ik x_{i, j+k-1} + b_i per channel (channels last).
    x (B, L, C), w (K, C), b (C,) -> (B, L-K+1, C)."""
    _, L, _, K = spec.check_seed_conv1d(x.shape, w.shape, b.shape)
    w, b = _like(w, x), _like(b, x)
    y = b + w[0] * x[:, 0 : L - K + 1, :]
    for k in range(1, K):  # k is the seed's k-1
        y = y + w[k] * x[:, k : k + L - K + 1, :]
    return y


def seed_pool1d(y):
    """Seed section 2.2: x_ij = max(y_ij, y_i,j+1). (B, L, C) -> (B, L-1, C)."""
    spec.check_seed_pool1d(y.shape)
    return tf.maximum(y[:, :-1, :], y[:, 1:, :])


# --------------------------------------------------------------------------- the seed models


def flatten(x):
    """(B, ...) -> (B, prod(...)), in memory order: for NHWC that is Keras' (h, w, c) order."""
    return tf.reshape(x, (tf.shape(x)[0], -1))


# --------------------------------------------------------------------------- gradients (GradientTape)


def chain_vjp(chain: Callable, weights: list[dict], x, dy) -> tuple:
    """GradientTape over <dy, chain(weights, x)>: (dx, the weights' gradients in the same nesting). For any model;
    dx is None where x holds integer token ids (an embedding's input), which the tape does not watch."""
    x = tf.convert_to_tensor(x)
    ids = x.dtype.is_integer
    inputs = {**({} if ids else {"x": x}), **{f"{i}/{k}": v for i, w in enumerate(weights) for k, v in w.items()}}

    def fn(**kw):
        return chain([{k: kw[f"{i}/{k}"] for k in w} for i, w in enumerate(weights)], x if ids else kw["x"])

    g = _vjp(fn, inputs, [tf.convert_to_tensor(dy) if ids else _like(dy, x)])
    return g.get("x"), [{k: g[f"{i}/{k}"] for k in w} for i, w in enumerate(weights)]


def gru_vjp(x, weights: GRUWeights, variant: str, dy, h0=None, dh_T=None) -> dict:
    """Cotangents dy of y (B, T, H) and dh_T of h_T (B, H), either None = zeros (not both) ->
    {"x", "h0", "W", "U", "b_x", "b_h"}.
    h0=None means zeros, and its gradient is still returned."""
    spec.check_variant(variant)
    B, T, _, H = spec.check_gru_vjp(x, weights, h0, dy, dh_T)
    dy = tf.zeros((B, T, H), dtype=x.dtype) if dy is None else _like(dy, x)  # None: only h_T is used
    h0 = tf.zeros((B, H), dtype=x.dtype) if h0 is None else _like(h0, x)
    inputs = {"x": x, "h0": h0} | {k: _like(getattr(weights, k), x) for k in ("W", "U", "b_x", "b_h")}
    dh = tf.zeros((B, H), dtype=x.dtype) if dh_T is None else _like(dh_T, x)

    def fn(x, h0, W, U, b_x, b_h):
        return gru(x, GRUWeights(W, U, b_x, b_h), variant, h0)

    return _vjp(fn, inputs, [dy, dh])


def dense_vjp(x, kernel, bias, dy) -> dict:
    spec.check_dense(x.shape, kernel.shape, bias.shape)
    spec.check_dy("dense_vjp", dy.shape, (*x.shape[:-1], kernel.shape[1]))
    inputs = {"x": x, "kernel": _like(kernel, x), "bias": _like(bias, x)}
    return _vjp(dense, inputs, [_like(dy, x)])


def relu_vjp(x, dy) -> dict:
    spec.check_dy("relu_vjp", dy.shape, x.shape)
    return _vjp(relu, {"x": x}, [_like(dy, x)])


def _check_onehot(logits, onehot) -> None:
    ls, os_ = tuple(int(d) for d in logits.shape), tuple(int(d) for d in onehot.shape)
    if ls != os_ or len(ls) < 1:
        raise spec.ShapeError(f"softmax_cross_entropy: logits.shape={ls} and onehot.shape={os_} must match")


def softmax_cross_entropy(logits, onehot):
    """Mean over the batch (every axis but the last) of -sum(onehot * log softmax(logits))."""
    _check_onehot(logits, onehot)
    log_p = logits - tf.reduce_logsumexp(logits, axis=-1, keepdims=True)
    return tf.reduce_mean(-tf.reduce_sum(_like(onehot, logits) * log_p, axis=-1))


def softmax_cross_entropy_vjp(logits, onehot) -> dict:
    """Gradient of the mean loss with respect to the logits: (softmax - onehot) / batch."""
    _check_onehot(logits, onehot)
    return _vjp(lambda logits: softmax_cross_entropy(logits, onehot), {"logits": logits}, None)


__all__ = [
    "clip",
    "gelu",
    "gelu_tanh",
    "hard_sigmoid",
    "hard_swish",
    "leaky_relu",
    "relu6",
    "silu",
    "mask_scores",
    "matmul",
    "prepend_token",
    "FRAMEWORK",
    "MODE",
    "MODES",
    "NAME",
    "amax",
    "asarray",
    "avg_pool2d",
    "avg_pool2d_vjp",
    "chain_vjp",
    "compile",
    "concat",
    "conv2d",
    "conv2d_vjp",
    "dense",
    "dense_vjp",
    "device_name",
    "embedding",
    "flatten",
    "gru",
    "gru_vjp",
    "ids_mask",
    "lengths_of",
    "lstm",
    "mask_steps",
    "mean_steps",
    "max_pool2d",
    "max_pool2d_vjp",
    "mean",
    "relu",
    "relu_vjp",
    "reshape",
    "reverse_steps",
    "rsqrt",
    "seed_conv1d",
    "seed_pool1d",
    "sigmoid",
    "softmax",
    "softmax_cross_entropy",
    "softmax_cross_entropy_vjp",
    "synchronize",
    "take_steps",
    "tanh",
    "tf_dtype",
    "time_maps",
    "to_numpy",
    "transpose",
    "values_mask",
    "zero_pad2d",
]  # fmt: skip
