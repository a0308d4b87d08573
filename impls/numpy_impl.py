"""The NumPy reference: every documented equation as plain, readable float64-capable NumPy.

This is the voice the others are measured against, so it favours the obvious over the fast:
the GRU is a loop over time whose lines are the equations, conv2d is a strided window view plus
einsum (JAX lax_reference's way), pooling is a max over the same view.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import spec
from .models import SEED_CNN_POOL, SEED_GRU_VARIANT, SeedCNNParams, SeedGRUParams
from .spec import ConvWeights, DenseWeights, GRUWeights

NAME = "numpy"
FRAMEWORK = "numpy"
MODE = "numpy"


# --------------------------------------------------------------------------- boundary


def asarray(a, dtype="float64", device=None) -> np.ndarray:
    if device not in (None, "cpu"):
        raise ValueError(f"numpy runs on the CPU only; got device={device!r}")
    return np.array(a, dtype=np.dtype(dtype), copy=True)


def to_numpy(a) -> np.ndarray:
    return np.asarray(a)


def synchronize(device=None) -> None:
    """NumPy is synchronous; present so that every backend offers the same names."""


def _cast(w, dtype):
    return w.map(lambda a: np.asarray(a, dtype=dtype))


# --------------------------------------------------------------------------- activations


def sigmoid(x: np.ndarray) -> np.ndarray:
    # 1 / (1 + e^-x), written through tanh so that large |x| never overflows
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(x)


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


# --------------------------------------------------------------------------- GRU


def gru_cell(x_t, h, w: GRUWeights, variant: str):
    """One step. x_t (B, I), h (B, H) -> h_t (B, H). Lines follow DESIGN.md's equations."""
    H = w.hidden_size
    Wz, Wr, Wh = w.W[:, :H], w.W[:, H : 2 * H], w.W[:, 2 * H :]
    Uz, Ur, Uh = w.U[:, :H], w.U[:, H : 2 * H], w.U[:, 2 * H :]
    bxz, bxr, bxh = w.b_x[:H], w.b_x[H : 2 * H], w.b_x[2 * H :]
    bhz, bhr, bhh = w.b_h[:H], w.b_h[H : 2 * H], w.b_h[2 * H :]

    z = sigmoid(x_t @ Wz + bxz + h @ Uz + bhz)  # (B, H)
    r = sigmoid(x_t @ Wr + bxr + h @ Ur + bhr)  # (B, H)
    if variant == "reset_after":  # cuDNN, torch.nn.GRU, Keras default
        h_tilde = tanh(x_t @ Wh + bxh + r * (h @ Uh + bhh))
    else:  # seed, reset_before, chung: the reset gate acts before the recurrent product
        h_tilde = tanh(x_t @ Wh + bxh + (r * h) @ Uh + bhh)

    if variant == "seed":  # h_t = (1 - z) * h_{t-1} (+) r * h~, with a (+) b = (a + b) / 2
        return ((1.0 - z) * h + r * h_tilde) / 2.0
    if variant == "chung":  # Chung et al. 2014: z weighs the candidate
        return (1.0 - z) * h + z * h_tilde
    return z * h + (1.0 - z) * h_tilde  # reset_before, reset_after (Cho et al. 2014)


def gru(x: np.ndarray, weights: GRUWeights, variant: str, h0: np.ndarray | None = None):
    """x (B, T, I) -> (y (B, T, H), h_T (B, H))."""
    spec.check_variant(variant)
    B, T, _, H = spec.check_gru(x.shape, weights, None if h0 is None else h0.shape)
    w = _cast(weights, x.dtype)
    h = np.zeros((B, H), dtype=x.dtype) if h0 is None else np.asarray(h0, dtype=x.dtype)
    ys = []
    for t in range(T):
        h = gru_cell(x[:, t, :], h, w, variant)
        ys.append(h)
    return np.stack(ys, axis=1), h


# --------------------------------------------------------------------------- conv, pool, dense


def _pad(x, pads, value=0.0):
    ph0, ph1, pw0, pw1 = pads
    return np.pad(x, ((0, 0), (ph0, ph1), (pw0, pw1), (0, 0)), constant_values=value)


def _windows(x, kh, kw, stride, oh, ow):
    """(B, H, W, C) -> strided view (B, OH, OW, C, KH, KW)."""
    v = sliding_window_view(x, (kh, kw), axis=(1, 2))
    return v[:, :: stride[0], :: stride[1]][:, :oh, :ow]


def conv2d(x, kernel, bias, stride=1, padding="valid"):
    """Cross-correlation, NHWC input, HWIO kernel; 'same' pads as TensorFlow (extra pixel after)."""
    _, _, _, _, KH, KW, _, st, pads, OH, OW = spec.check_conv2d(x.shape, kernel.shape, bias.shape, stride, padding)
    cols = _windows(_pad(x, pads), KH, KW, st, OH, OW)  # (B, OH, OW, C, KH, KW)
    return np.einsum("bhwcij,ijco->bhwo", cols, kernel.astype(x.dtype)) + bias.astype(x.dtype)


def max_pool2d(x, pool=2, stride=None, padding="valid"):
    """Max over windows; 'same' padding pads with -inf, so padding never wins."""
    _, _, _, _, (ph, pw), st, pads, OH, OW = spec.check_pool2d(x.shape, pool, stride, padding)
    win = _windows(_pad(x, pads, -np.inf), ph, pw, st, OH, OW)  # (B, OH, OW, C, ph, pw)
    return win.max(axis=(4, 5))


def dense(x, kernel, bias):
    spec.check_dense(x.shape, kernel.shape, bias.shape)
    return x @ kernel.astype(x.dtype) + bias.astype(x.dtype)


# --------------------------------------------------------------------------- the seed's 1-D equations


def seed_conv1d(x, w, b):
    """Seed section 2.2: y_ij = sum_{k=1..K} w_ik x_{i, j+k-1} + b_i, per channel i (channels last).
    x (B, L, C), w (K, C), b (C,) -> y (B, L-K+1, C)."""
    _, L, _, K = spec.check_seed_conv1d(x.shape, w.shape, b.shape)
    w, b = w.astype(x.dtype), b.astype(x.dtype)
    y = np.zeros((x.shape[0], L - K + 1, x.shape[2]), dtype=x.dtype) + b
    for k in range(K):  # k is the seed's k-1
        y = y + w[k] * x[:, k : k + L - K + 1, :]
    return y


def seed_pool1d(y):
    """Seed section 2.2: x_ij = max(y_ij, y_i,j+1). (B, L, C) -> (B, L-1, C)."""
    spec.check_seed_pool1d(y.shape)
    return np.maximum(y[:, :-1, :], y[:, 1:, :])


# --------------------------------------------------------------------------- the seed models


def seed_gru_model(params: SeedGRUParams, variant: str = SEED_GRU_VARIANT, dtype=None, device=None) -> Callable:
    """GRU(128, return_sequences) -> GRU(64) -> Dense(10, softmax). Returns forward(x) -> probabilities."""
    spec.check_variant(variant)
    p = params if dtype is None else params.map(lambda a: asarray(a, dtype, device))

    def forward(x):
        y1, _ = gru(x, p.gru1, variant)
        _, h2 = gru(y1, p.gru2, variant)
        return softmax(dense(h2, p.dense.kernel, p.dense.bias))

    return forward


def seed_cnn_model(params: SeedCNNParams, dtype=None, device=None) -> Callable:
    """Conv(relu) -> pool -> Conv(relu) -> pool -> Flatten (h, w, c) -> Dense(relu) -> Dense(softmax)."""
    p = params if dtype is None else params.map(lambda a: asarray(a, dtype, device))

    def forward(x):
        a = max_pool2d(relu(conv2d(x, p.conv1.kernel, p.conv1.bias)), SEED_CNN_POOL)
        a = max_pool2d(relu(conv2d(a, p.conv2.kernel, p.conv2.bias)), SEED_CNN_POOL)
        a = a.reshape(a.shape[0], -1)  # NHWC flatten: (h, w, c) order, as Keras
        a = relu(dense(a, p.dense1.kernel, p.dense1.bias))
        return softmax(dense(a, p.dense2.kernel, p.dense2.bias))

    return forward


__all__ = [
    "asarray", "to_numpy", "synchronize", "gru", "gru_cell", "conv2d", "max_pool2d", "dense", "relu",
    "softmax", "sigmoid", "seed_conv1d", "seed_pool1d", "seed_gru_model", "seed_cnn_model",
    "ConvWeights", "DenseWeights", "GRUWeights",
]  # fmt: skip
