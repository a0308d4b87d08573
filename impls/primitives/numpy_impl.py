"""The NumPy reference: every documented equation as plain, readable float64-capable NumPy.

This is the voice the others are measured against, so it favours the obvious over the fast:
the GRU is a loop over time whose lines are the equations, conv2d is a strided window view plus
einsum (JAX lax_reference's way), pooling is a max or mean over the same view (conv2d and the pools,
with groups, dilation and explicit padding, live in impls/primitives/numpy_conv.py and are re-exported here, as
are the GRU from numpy_gru.py, the activations and loss from numpy_activations.py, and the LSTM, embeddings and
padded sequences' index maps from numpy_seq.py).

Every forward has its hand-written backward right beside it (micrograd's habit): a vector-Jacobian
product `<op>_vjp(inputs..., dy) -> {input name: gradient}`, checked against central finite
differences in verify/test_finite_differences.py and used as the reference for the frameworks'
autograd in verify/test_gradients.py. Conventions the frameworks could disagree on, decided here:
- relu'(0) = 0 (the gradient passes only where x > 0), as torch's threshold_backward and TF's ReluGrad
  do; at NaN it is 0 too (NaN > 0 is False), as TF does, while torch passes dy through (x <= 0 is False).
- max_pool2d routes each window's dy to the first maximum in row-major window order (top row first,
  then left to right), as torch does and as TF's MaxPoolGrad does on CPU (verify/test_gradients.py
  shows both with deliberate ties); overlapping windows add.
"""

from __future__ import annotations

import numpy as np

from ..contract import spec
from ..contract.spec import ConvWeights, DenseWeights, GRUWeights
from .numpy_activations import (
    clip,
    clip_vjp,
    gelu,
    gelu_tanh,
    gelu_tanh_vjp,
    gelu_vjp,
    hard_sigmoid,
    hard_sigmoid_vjp,
    hard_swish,
    hard_swish_vjp,
    leaky_relu,
    leaky_relu_vjp,
    relu,
    relu6,
    relu6_vjp,
    silu,
    silu_vjp,
    relu_vjp,
    sigmoid,
    softmax,
    softmax_cross_entropy,
    softmax_cross_entropy_vjp,
    softmax_vjp,
    tanh,
)
from .numpy_conv import avg_pool2d, avg_pool2d_vjp, conv2d, conv2d_vjp, max_pool2d, max_pool2d_vjp
from .numpy_gru import GRUTape, gru, gru_backward, gru_cell, gru_forward, gru_vjp
from .numpy_seq import (
    embedding,
    embedding_vjp,
    ids_mask,
    lengths_of,
    lstm,
    lstm_vjp,
    mask_steps,
    mean_steps,
    take_steps,
    take_steps_vjp,
    time_maps,
    values_mask,
)
from .numpy_norm import lrn  # issue 24's normalization family
from .numpy_attn import mask_scores, matmul, prepend_token  # attention's ops (issue 25)


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


# --------------------------------------------------------------------------- padding


def zero_pad2d(x: np.ndarray, pads: tuple[int, int, int, int]) -> np.ndarray:
    """NHWC zeros around each image: pads (top, bottom, left, right)."""
    t, b, l, r = pads
    return np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)))


# --------------------------------------------------------------------------- dense (conv and pools: numpy_conv.py)


def dense(x, kernel, bias):
    spec.check_dense(x.shape, kernel.shape, bias.shape)
    return x @ kernel.astype(x.dtype) + bias.astype(x.dtype)


def dense_vjp(x, kernel, bias, dy) -> dict[str, np.ndarray]:
    """Gradients of <dy, x @ kernel + bias>; x (..., in), every leading axis summed for the weights."""
    spec.check_dense(x.shape, kernel.shape, bias.shape)
    spec.check_dy("dense_vjp", dy.shape, (*x.shape[:-1], kernel.shape[1]))
    k, dy = kernel.astype(x.dtype), dy.astype(x.dtype)
    x2, dy2 = x.reshape(-1, x.shape[-1]), dy.reshape(-1, dy.shape[-1])  # (N, in), (N, out)
    return {"x": dy @ k.T, "kernel": x2.T @ dy2, "bias": dy2.sum(axis=0)}


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


# --------------------------------------------------------------------------- shapes


def reshape(x: np.ndarray, shape) -> np.ndarray:
    """Row-major (C order), as every framework here reshapes; a copy, never a view of the caller's array."""
    return np.array(np.reshape(x, tuple(shape)))


def transpose(x: np.ndarray, perm) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(x, tuple(perm)))


def mean(x: np.ndarray, axes, keepdims: bool = False) -> np.ndarray:
    return np.mean(x, axis=tuple(axes), keepdims=keepdims)


def amax(x: np.ndarray, axes, keepdims: bool = False) -> np.ndarray:
    return np.max(x, axis=tuple(axes), keepdims=keepdims)


def rsqrt(x: np.ndarray) -> np.ndarray:
    return 1.0 / np.sqrt(x)


def reverse_steps(x: np.ndarray) -> np.ndarray:
    """x (B, T, ...) with its time axis reversed."""
    return np.flip(x, axis=1)


def concat(xs, axis: int = -1) -> np.ndarray:
    return np.concatenate(xs, axis=axis)


def flatten(x):
    """(B, ...) -> (B, prod(...)), in memory order: for NHWC that is Keras' (h, w, c) order."""
    return x.reshape(x.shape[0], -1)


__all__ = [
    "clip",
    "clip_vjp",
    "gelu",
    "gelu_tanh",
    "gelu_tanh_vjp",
    "gelu_vjp",
    "hard_sigmoid",
    "hard_sigmoid_vjp",
    "hard_swish",
    "hard_swish_vjp",
    "leaky_relu",
    "leaky_relu_vjp",
    "relu6",
    "relu6_vjp",
    "silu",
    "silu_vjp",
    "mask_scores",
    "matmul",
    "prepend_token",
    "ConvWeights",
    "DenseWeights",
    "GRUTape",
    "GRUWeights",
    "asarray",
    "avg_pool2d",
    "avg_pool2d_vjp",
    "concat",
    "conv2d",
    "conv2d_vjp",
    "dense",
    "dense_vjp",
    "embedding",
    "embedding_vjp",
    "flatten",
    "gru",
    "gru_backward",
    "gru_cell",
    "gru_forward",
    "gru_vjp",
    "ids_mask",
    "lengths_of",
    "lstm",
    "lstm_vjp",
    "mask_steps",
    "mean_steps",
    "max_pool2d",
    "max_pool2d_vjp",
    "relu",
    "relu_vjp",
    "reverse_steps",
    "seed_conv1d",
    "seed_pool1d",
    "sigmoid",
    "softmax",
    "softmax_cross_entropy",
    "softmax_cross_entropy_vjp",
    "softmax_vjp",
    "synchronize",
    "take_steps",
    "take_steps_vjp",
    "tanh",
    "time_maps",
    "to_numpy",
    "values_mask",
    "zero_pad2d",
]  # fmt: skip
