"""TensorFlow from primitives: the contract written with tf.matmul, tf.sigmoid, tf.tanh, tf.pad, strided
slices, tf.add_n, tf.reduce_max, tf.reduce_logsumexp, tf.gather and tf.reverse only.

No tf.nn.conv2d, tf.nn.max_pool2d, tf.nn.avg_pool2d, tf.nn.softmax, Keras layers or tf.keras here: those are the built-in
voice (impls/builtin/keras_builtin.py). Gradients are tf.GradientTape over these same primitives.
Every function works eagerly and inside tf.function (with or without XLA): see `compile`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import frameworks
from ..contract import spec
from ..contract.spec import GRUWeights, LSTMWeights

tf = frameworks.load("tensorflow")

NAME = "tensorflow"
FRAMEWORK = "tensorflow"
MODE = "eager"
MODES = ("eager", "tf.function", "tf.function(jit_compile=True)")

_DEVICES = {"cpu": "/CPU:0", "gpu": "/GPU:0", "cuda": "/GPU:0"}
_DTYPES = ("float64", "float32", "bfloat16", "float16")
_ID_DTYPES = ("int64", "int32")  # token ids (an embedding's input): asarray only


# --------------------------------------------------------------------------- boundary


def tf_dtype(dtype) -> Any:
    """A NumPy dtype, its name, or a tf.DType -> tf.DType (float64, float32, bfloat16, float16 only)."""
    name = (
        dtype.name
        if isinstance(dtype, tf.DType)
        else dtype
        if isinstance(dtype, str)
        else np.dtype(dtype).name
    )
    if name not in _DTYPES:
        raise ValueError(f"unsupported dtype {dtype!r}; supported: {', '.join(_DTYPES)}")
    return tf.as_dtype(name)


def device_name(device: str | None) -> str | None:
    if device is None:
        return None
    if device not in _DEVICES:
        raise ValueError(f"unknown device {device!r}; valid devices: {', '.join(_DEVICES)}")
    return _DEVICES[device]


def asarray(a, dtype="float64", device: str | None = None):
    """NumPy (or a tensor) -> a tf tensor of `dtype` (a float; int64/int32 for integer token ids only, floats are
    never cast to ids), placed on `device` ("cpu", "gpu"/"cuda") if given."""
    name = dtype.name if isinstance(dtype, tf.DType) else dtype if isinstance(dtype, str) else np.dtype(dtype).name
    ids = name in _ID_DTYPES and tf.convert_to_tensor(a).dtype.is_integer  # never floats truncated to ids
    dt, dev = (tf.as_dtype(name) if ids else tf_dtype(dtype)), device_name(device)
    if dev is None:
        return tf.cast(tf.convert_to_tensor(a), dt)
    with tf.device(dev):
        return tf.identity(tf.cast(tf.convert_to_tensor(a), dt))


def to_numpy(a) -> np.ndarray:
    return a.numpy() if hasattr(a, "numpy") else np.asarray(a)


def synchronize(device=None) -> None:
    """Block until queued device work (GPU streams, async eager ops) has finished."""
    tf.test.experimental.sync_devices()


def compile(fn: Callable, mode: str = MODE) -> Callable:
    """fn as run in `mode`: eager (itself), tf.function, or tf.function compiled by XLA."""
    if mode == "eager":
        return fn
    if mode == "tf.function":
        return tf.function(fn)
    if mode == "tf.function(jit_compile=True)":
        return tf.function(fn, jit_compile=True)
    raise ValueError(f"unknown mode {mode!r}; valid modes: {', '.join(MODES)}")


def _like(a, x):
    """A weight (NumPy or tensor) as a tensor of x's dtype."""
    return tf.cast(tf.convert_to_tensor(a), x.dtype)


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


# --------------------------------------------------------------------------- LSTM, embeddings, padded sequences


def lstm(x, weights: LSTMWeights, h0=None, c0=None):
    """x (B, T, I) -> (y (B, T, H), h_T (B, H), c_T (B, H)). One matmul projects all timesteps; tf.scan runs the
    recurrence: gates (i, f, g, o) = sigmoid, sigmoid, tanh, sigmoid; c = f * c + i * g; h = o * tanh(c)."""
    B, T, I, H = spec.check_lstm(x.shape, weights, None if h0 is None else tuple(h0.shape),
                                 None if c0 is None else tuple(c0.shape))
    W, U, b_x, b_h = (_like(a, x) for a in (weights.W, weights.U, weights.b_x, weights.b_h))
    h = tf.zeros((B, H), dtype=x.dtype) if h0 is None else _like(h0, x)
    c = tf.zeros((B, H), dtype=x.dtype) if c0 is None else _like(c0, x)
    xp = tf.reshape(tf.matmul(tf.reshape(x, (B * T, I)), W) + b_x, (B, T, 4 * H))  # x W + b_x, all steps
    xp = tf.transpose(xp, (1, 0, 2))  # (T, B, 4H): tf.scan walks the first axis

    def step(state, xp_t):
        h, c = state
        a = xp_t + (tf.matmul(h, U) + b_h)
        i, f = tf.sigmoid(a[:, :H]), tf.sigmoid(a[:, H : 2 * H])
        g, o = tf.tanh(a[:, 2 * H : 3 * H]), tf.sigmoid(a[:, 3 * H :])
        c = f * c + i * g
        return o * tf.tanh(c), c

    hs, cs = tf.scan(step, xp, initializer=(h, c))  # (T, B, H) each
    return tf.transpose(hs, (1, 0, 2)), hs[-1], cs[-1]


def embedding(ids, table):
    """ids (B, T) integers -> table rows (B, T, D): tf.gather. Ids are checked at the model's boundary
    (Model.check_input); TensorFlow's own gather would raise on the CPU and give zeros on a GPU."""
    return tf.gather(table, ids)


def ids_mask(ids):
    """Keras' Embedding(mask_zero=True): id 0 is padding. (B, T) bool."""
    return tf.not_equal(ids, tf.zeros((), ids.dtype))


def values_mask(x, value: float):
    """Keras' Masking(mask_value): a step is padding when every feature equals the value. (B, T) bool."""
    return tf.reduce_any(tf.not_equal(x, tf.cast(value, x.dtype)), axis=-1)


def lengths_of(mask):
    """Valid steps per row (B,) int64: the sum alone (the mask was checked post-padded at the model's boundary)."""
    return tf.reduce_sum(tf.cast(mask, tf.int64), axis=1)


def time_maps(lengths, T: int):
    """(valid, hold, rev, nonempty), each (B, T); what they mean is impls/primitives/numpy_seq.py's."""
    t = tf.range(T, dtype=tf.int64)[None, :]
    L = tf.cast(lengths, tf.int64)[:, None]
    valid = t < L
    hold = tf.maximum(tf.minimum(t, L - 1), tf.zeros((), tf.int64))
    rev = tf.where(valid, L - 1 - t, t + tf.zeros_like(L))
    return valid, hold, rev, tf.broadcast_to(L > 0, tf.shape(valid))


def take_steps(x, idx):
    """x (B, T, F), idx (B, T') int -> x[b, idx[b, t]] (B, T', F): a batched tf.gather along time."""
    return tf.gather(x, idx, axis=1, batch_dims=1)


def mask_steps(x, valid):
    """x (B, T, F) with the steps where valid is False set to 0."""
    return x * tf.cast(valid, x.dtype)[:, :, None]


def reverse_steps(x):
    """x (B, T, ...) with its time axis reversed."""
    return tf.reverse(x, axis=[1])


def concat(xs, axis: int = -1):
    return tf.concat(list(xs), axis=axis)


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


# --------------------------------------------------------------------------- conv, pool, dense


def _pad(x, pads, value=0.0):
    t, b, l, r = pads
    return tf.pad(x, [[0, 0], [t, b], [l, r], [0, 0]], constant_values=value)


def _windows(x, kh, kw, stride, oh, ow, dilation=(1, 1)):
    """(B, H, W, C) -> kh*kw strided slices (B, OH, OW, C), in (i, j) row-major order; tap (i, j) starts
    at (i * dh, j * dw)."""
    (sh, sw), (dh, dw) = stride, dilation
    return [
        x[:, i * dh : i * dh + (oh - 1) * sh + 1 : sh, j * dw : j * dw + (ow - 1) * sw + 1 : sw, :]
        for i in range(kh)
        for j in range(kw)
    ]


def conv2d(x, kernel, bias, stride=1, padding="valid", dilation=1, groups=1):
    """Cross-correlation, NHWC input, HWIO kernel (I = C_in / groups); 'same' pads as TensorFlow (the odd
    pixel after). One batched matmul over the groups."""
    g = spec.check_conv2d(x.shape, kernel.shape, bias.shape, stride, padding, dilation, groups)
    G, Cg, Og, N, KK = g.groups, g.C // g.groups, g.O // g.groups, g.B * g.OH * g.OW, g.KH * g.KW
    cols = tf.stack(_windows(_pad(x, g.pads), g.KH, g.KW, g.stride, g.OH, g.OW, g.dilation), axis=3)  # (B, OH, OW, KK, C)
    cols = tf.transpose(tf.reshape(cols, (N, KK, G, Cg)), (2, 0, 1, 3))  # (G, N, KK, Cg)
    cols = tf.reshape(cols, (G, N, KK * Cg))  # rows (i, j, c'), as the kernel's HWI
    k = tf.transpose(tf.reshape(_like(kernel, x), (KK, Cg, G, Og)), (2, 0, 1, 3))  # (G, KK, Cg, Og)
    y = tf.matmul(cols, tf.reshape(k, (G, KK * Cg, Og)))  # (G, N, Og)
    y = tf.reshape(tf.transpose(y, (1, 0, 2)), (g.B, g.OH, g.OW, g.O))  # output o = group * Og + o'
    return y + _like(bias, x)


def max_pool2d(x, pool=2, stride=None, padding="valid"):
    """Max over windows; padding pads with -inf so that padding never wins."""
    g = spec.check_pool2d(x.shape, pool, stride, padding)
    win = tf.stack(_windows(_pad(x, g.pads, float("-inf")), *g.pool, g.stride, g.OH, g.OW))  # (ph*pw, B, OH, OW, C)
    return tf.reduce_max(win, axis=0)  # its gradient splits dy among tied maxima (TIE_ROUTING declares it)


def avg_pool2d(x, pool=2, stride=None, padding="valid", count_include_pad=False):
    """Window sums of the zero-padded input over the window size (count_include_pad=True) or over the
    input cells each window covers (False, TensorFlow's own AvgPool rule)."""
    spec.check_count_include_pad(count_include_pad)
    g = spec.check_pool2d(x.shape, pool, stride, padding, op="avg_pool2d")
    sums = tf.add_n(_windows(_pad(x, g.pads), *g.pool, g.stride, g.OH, g.OW))  # (B, OH, OW, C)
    if count_include_pad:
        return sums / tf.cast(g.pool[0] * g.pool[1], x.dtype)
    ones = _pad(tf.ones((1, g.H, g.W, 1), dtype=x.dtype), g.pads)  # 1 on input cells, 0 on padding
    return sums / tf.add_n(_windows(ones, *g.pool, g.stride, g.OH, g.OW))


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


def _vjp(fn, inputs: dict, outputs_dy: list | None) -> dict:
    """Run fn(**inputs) under a tape watching every input; pull back the cotangents (one per output;
    None for a scalar output: its gradient)."""
    with tf.GradientTape() as tape:
        for v in inputs.values():
            tape.watch(v)
        out = fn(**inputs)
    out = list(out) if isinstance(out, tuple) else [out]
    keys = list(inputs)
    grads = tape.gradient(
        out,
        [inputs[k] for k in keys],
        output_gradients=outputs_dy,
        unconnected_gradients=tf.UnconnectedGradients.ZERO,
    )
    # a gather's gradient (an embedding table's) is tf.IndexedSlices: the dense tensor, as every other gradient
    return {k: tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for k, g in zip(keys, grads)}


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


def conv2d_vjp(x, kernel, bias, dy, stride=1, padding="valid", dilation=1, groups=1) -> dict:
    g = spec.check_conv2d(x.shape, kernel.shape, bias.shape, stride, padding, dilation, groups)
    spec.check_dy("conv2d_vjp", dy.shape, (g.B, g.OH, g.OW, g.O))
    inputs = {"x": x, "kernel": _like(kernel, x), "bias": _like(bias, x)}
    return _vjp(lambda x, kernel, bias: conv2d(x, kernel, bias, stride, padding, dilation, groups), inputs, [_like(dy, x)])


def max_pool2d_vjp(x, dy, pool=2, stride=None, padding="valid") -> dict:
    g = spec.check_pool2d(x.shape, pool, stride, padding)
    spec.check_dy("max_pool2d_vjp", dy.shape, (g.B, g.OH, g.OW, g.C))
    return _vjp(lambda x: max_pool2d(x, pool, stride, padding), {"x": x}, [_like(dy, x)])


def avg_pool2d_vjp(x, dy, pool=2, stride=None, padding="valid", count_include_pad=False) -> dict:
    g = spec.check_pool2d(x.shape, pool, stride, padding, op="avg_pool2d")
    spec.check_dy("avg_pool2d_vjp", dy.shape, (g.B, g.OH, g.OW, g.C))
    return _vjp(lambda x: avg_pool2d(x, pool, stride, padding, count_include_pad), {"x": x}, [_like(dy, x)])


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
    "embedding",
    "flatten",
    "gru",
    "gru_vjp",
    "ids_mask",
    "lengths_of",
    "lstm",
    "mask_steps",
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
    "time_maps",
    "to_numpy",
    "transpose",
    "values_mask",
    "zero_pad2d",
]  # fmt: skip
