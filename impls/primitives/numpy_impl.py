"""The NumPy reference: every documented equation as plain, readable float64-capable NumPy.

This is the voice the others are measured against, so it favours the obvious over the fast:
the GRU is a loop over time whose lines are the equations, conv2d is a strided window view plus
einsum (JAX lax_reference's way), pooling is a max or mean over the same view (conv2d and the pools,
with groups, dilation and explicit padding, live in impls/primitives/numpy_conv.py and are re-exported here).

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

from dataclasses import dataclass

import numpy as np

from ..contract import spec
from ..contract.spec import ConvWeights, DenseWeights, GRUWeights
from .numpy_conv import avg_pool2d, avg_pool2d_vjp, conv2d, conv2d_vjp, max_pool2d, max_pool2d_vjp
from .numpy_seq import (
    embedding,
    embedding_vjp,
    ids_mask,
    lengths_of,
    lstm,
    lstm_vjp,
    mask_steps,
    take_steps,
    take_steps_vjp,
    time_maps,
    values_mask,
)

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


def zero_pad2d(x: np.ndarray, pads: tuple[int, int, int, int]) -> np.ndarray:
    """NHWC zeros around each image: pads (top, bottom, left, right)."""
    t, b, l, r = pads
    return np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)))


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)


def relu_vjp(x: np.ndarray, dy: np.ndarray) -> dict[str, np.ndarray]:
    """d relu / dx = 1 where x > 0, else 0: at exactly 0 the gradient is 0 (torch and TF agree)."""
    spec.check_dy("relu_vjp", dy.shape, x.shape)
    return {"x": dy * (x > 0)}


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def softmax_vjp(y: np.ndarray, dy: np.ndarray, axis: int = -1) -> np.ndarray:
    """Given y = softmax(x) and dL/dy, dL/dx = y * (dy - sum(dy * y)) (the softmax Jacobian
    diag(y) - y y^T applied to dy)."""
    spec.check_dy("softmax_vjp", dy.shape, y.shape)
    return y * (dy - np.sum(dy * y, axis=axis, keepdims=True))


def _check_onehot(logits, onehot) -> None:
    if tuple(logits.shape) != tuple(onehot.shape) or len(logits.shape) < 1:
        raise spec.ShapeError(
            f"softmax_cross_entropy: onehot.shape={tuple(onehot.shape)} must equal logits.shape={tuple(logits.shape)}"
        )


def softmax_cross_entropy(logits: np.ndarray, onehot: np.ndarray) -> np.ndarray:
    """Mean over the leading axes of -sum_k t_k log softmax(logits)_k, through log-sum-exp.
    logits, onehot (..., K) -> scalar (a 0-d array of logits' dtype)."""
    _check_onehot(logits, onehot)
    onehot = np.asarray(onehot, dtype=logits.dtype)
    shifted = logits - np.max(logits, axis=-1, keepdims=True)
    log_p = shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))  # log softmax
    n = logits.size // logits.shape[-1]
    return np.asarray(-np.sum(onehot * log_p) / n, dtype=logits.dtype)


def softmax_cross_entropy_vjp(logits: np.ndarray, onehot: np.ndarray) -> dict[str, np.ndarray]:
    """d mean(CE) / d logits = (softmax(logits) * sum_k t_k - t) / N; sum_k t_k = 1 for one-hot rows."""
    _check_onehot(logits, onehot)
    onehot = np.asarray(onehot, dtype=logits.dtype)
    n = logits.size // logits.shape[-1]
    return {"logits": (softmax(logits) * np.sum(onehot, axis=-1, keepdims=True) - onehot) / n}


# --------------------------------------------------------------------------- GRU


def _gru_step(x_t, h, w: GRUWeights, variant: str):
    """One step. x_t (B, I), h (B, H) -> (h_t (B, H), what the backward needs). Lines follow DESIGN.md's
    equations."""
    H = w.hidden_size
    Wz, Wr, Wh = w.W[:, :H], w.W[:, H : 2 * H], w.W[:, 2 * H :]
    Uz, Ur, Uh = w.U[:, :H], w.U[:, H : 2 * H], w.U[:, 2 * H :]
    bxz, bxr, bxh = w.b_x[:H], w.b_x[H : 2 * H], w.b_x[2 * H :]
    bhz, bhr, bhh = w.b_h[:H], w.b_h[H : 2 * H], w.b_h[2 * H :]

    z = sigmoid(x_t @ Wz + bxz + h @ Uz + bhz)  # (B, H)
    r = sigmoid(x_t @ Wr + bxr + h @ Ur + bhr)  # (B, H)
    if variant == "reset_after":  # cuDNN, torch.nn.GRU, Keras default
        hU = h @ Uh + bhh  # (B, H) the recurrent product, reset after it
        h_tilde = tanh(x_t @ Wh + bxh + r * hU)
    else:  # seed, reset_before, chung: the reset gate acts before the recurrent product
        hU = None
        h_tilde = tanh(x_t @ Wh + bxh + (r * h) @ Uh + bhh)

    if variant == "seed":  # h_t = (1 - z) * h_{t-1} (+) r * h~, with a (+) b = (a + b) / 2
        h_t = ((1.0 - z) * h + r * h_tilde) / 2.0
    elif variant == "chung":  # Chung et al. 2014: z weighs the candidate
        h_t = (1.0 - z) * h + z * h_tilde
    else:  # reset_before, reset_after (Cho et al. 2014)
        h_t = z * h + (1.0 - z) * h_tilde
    return h_t, (z, r, h_tilde, hU)


def gru_cell(x_t, h, w: GRUWeights, variant: str):
    """One step. x_t (B, I), h (B, H) -> h_t (B, H)."""
    return _gru_step(x_t, h, w, variant)[0]


@dataclass(frozen=True)
class GRUTape:
    """What backpropagation through time needs from a forward pass, stacked over time (axis 1)."""

    x: np.ndarray  # (B, T, I)
    w: GRUWeights  # cast to x's dtype
    variant: str
    h_prev: np.ndarray  # (B, T, H) h_{t-1} entering step t; h_prev[:, 0] = h0
    z: np.ndarray  # (B, T, H)
    r: np.ndarray  # (B, T, H)
    h_tilde: np.ndarray  # (B, T, H)
    hU: np.ndarray | None  # (B, T, H) h_{t-1} U_h + b_hh, reset_after only
    y: np.ndarray  # (B, T, H) outputs h_1 .. h_T


def gru_forward(x: np.ndarray, weights: GRUWeights, variant: str, h0: np.ndarray | None = None) -> GRUTape:
    """The forward pass, keeping what gru_backward needs. tape.y is gru(...)[0], tape.y[:, -1] is h_T."""
    spec.check_variant(variant)
    B, T, _, H = spec.check_gru(x.shape, weights, None if h0 is None else h0.shape)
    w = _cast(weights, x.dtype)
    h = np.zeros((B, H), dtype=x.dtype) if h0 is None else np.asarray(h0, dtype=x.dtype)
    h_prev, saved, ys = [], [], []
    for t in range(T):
        h_prev.append(h)
        h, s = _gru_step(x[:, t, :], h, w, variant)
        saved.append(s)
        ys.append(h)
    z, r, h_tilde, hU = ([s[i] for s in saved] for i in range(4))
    return GRUTape(
        x=x, w=w, variant=variant, h_prev=np.stack(h_prev, axis=1), z=np.stack(z, axis=1),
        r=np.stack(r, axis=1), h_tilde=np.stack(h_tilde, axis=1),
        hU=np.stack(hU, axis=1) if variant == "reset_after" else None, y=np.stack(ys, axis=1),
    )  # fmt: skip


def gru(x: np.ndarray, weights: GRUWeights, variant: str, h0: np.ndarray | None = None):
    """x (B, T, I) -> (y (B, T, H), h_T (B, H))."""
    tape = gru_forward(x, weights, variant, h0)
    return tape.y, tape.y[:, -1]


def gru_backward(tape: GRUTape, dy: np.ndarray | None, dh_T: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Backpropagation through time over a recorded forward. dy (B, T, H) and/or dh_T (B, H), None = zeros.

    Per step, from dh = dL/dh_t (dy_t plus what flows back from step t+1), with a_* the gate
    pre-activations (z = sigmoid(a_z), r = sigmoid(a_r), h~ = tanh(a_h)):
        update      dz, dh~ and the direct part of dh_{t-1}, per variant
        candidate   da_h = dh~ * (1 - h~^2)
          reset_after:  a_h = x W_h + b_xh + r * hU, hU = h U_h + b_hh -> dr = da_h * hU, dhU = da_h * r
          otherwise:    a_h = x W_h + b_xh + q U_h + b_hh, q = r * h -> dq = da_h U_h^T, dr = dq * h
        gates       da_z = dz * z (1 - z), da_r = dr * r (1 - r)
        h_{t-1}     += da_z U_z^T + da_r U_r^T + (dhU U_h^T | dq * r)
    Weight gradients are summed over batch and time at the end: dW = sum x^T [da_z, da_r, da_h],
    dU = sum [h, h, (h | q)]^T [da_z, da_r, (dhU | da_h)], db_x and db_h the matching sums.
    """
    w, variant = tape.w, tape.variant
    B, T, H = tape.y.shape
    if dy is None and dh_T is None:
        raise ValueError("gru_backward needs dy, dh_T or both; got neither")
    if dy is not None:
        spec.check_dy("gru_vjp", dy.shape, (B, T, H))
        dy = np.asarray(dy, dtype=tape.x.dtype)
    if dh_T is not None:
        spec.check_dy("gru_vjp dh_T", dh_T.shape, (B, H))
    Uz, Ur, Uh = w.U[:, :H], w.U[:, H : 2 * H], w.U[:, 2 * H :]
    dt = tape.x.dtype
    dh = np.zeros((B, H), dtype=dt) if dh_T is None else np.asarray(dh_T, dtype=dt)
    da = np.empty((B, T, 3 * H), dtype=dt)  # dL/d[a_z, a_r, a_h] per step
    d_rec = np.empty((B, T, H), dtype=dt)  # dL/d(output of the candidate's recurrent product)
    for t in reversed(range(T)):
        if dy is not None:
            dh = dh + dy[:, t]
        h, z, r, h_tilde = tape.h_prev[:, t], tape.z[:, t], tape.r[:, t], tape.h_tilde[:, t]
        if variant == "seed":  # h_t = ((1 - z) h + r h~) / 2
            dz, dr, dh_tilde, dh_prev = -dh * h / 2.0, dh * h_tilde / 2.0, dh * r / 2.0, dh * (1.0 - z) / 2.0
        elif variant == "chung":  # h_t = (1 - z) h + z h~
            dz, dr, dh_tilde, dh_prev = dh * (h_tilde - h), 0.0, dh * z, dh * (1.0 - z)
        else:  # h_t = z h + (1 - z) h~
            dz, dr, dh_tilde, dh_prev = dh * (h - h_tilde), 0.0, dh * (1.0 - z), dh * z
        da_h = dh_tilde * (1.0 - h_tilde * h_tilde)
        if variant == "reset_after":
            dr = dr + da_h * tape.hU[:, t]
            d_rec[:, t] = da_h * r  # dL/dhU
            dh_prev = dh_prev + d_rec[:, t] @ Uh.T
        else:
            dq = da_h @ Uh.T  # q = r * h
            dr = dr + dq * h
            dh_prev = dh_prev + dq * r
            d_rec[:, t] = da_h
        da_z = dz * z * (1.0 - z)
        da_r = dr * r * (1.0 - r)
        dh = dh_prev + da_z @ Uz.T + da_r @ Ur.T
        da[:, t, :H], da[:, t, H : 2 * H], da[:, t, 2 * H :] = da_z, da_r, da_h
    # sums over batch and time as one matrix product each: rows are the B*T (b, t) pairs
    h_all = tape.h_prev.reshape(B * T, H)  # h_{t-1}
    rec_in = h_all if variant == "reset_after" else (tape.r * tape.h_prev).reshape(B * T, H)  # what U_h multiplies
    da2 = da.reshape(B * T, 3 * H)
    dU = np.concatenate([h_all.T @ da2[:, : 2 * H], rec_in.T @ d_rec.reshape(B * T, H)], axis=1)
    return {
        "x": da @ w.W.T,  # (B, T, I)
        "h0": dh,  # (B, H)
        "W": tape.x.reshape(B * T, -1).T @ da2,  # (I, 3H)
        "U": dU,  # (H, 3H)
        "b_x": da.sum(axis=(0, 1)),  # (3H,)
        "b_h": np.concatenate([da[..., : 2 * H].sum(axis=(0, 1)), d_rec.sum(axis=(0, 1))]),  # (3H,)
    }


def gru_vjp(
    x: np.ndarray,
    weights: GRUWeights,
    variant: str,
    dy: np.ndarray | None,
    h0: np.ndarray | None = None,
    dh_T: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Gradients of <dy, y> + <dh_T, h_T> for (y, h_T) = gru(x, weights, variant, h0), by BPTT.
    Returns {"x", "h0", "W", "U", "b_x", "b_h"}; h0=None means zeros and "h0" is still returned. In the
    seed and the reset-before variants b_x and b_h only ever appear as b_x + b_h, so their gradients are
    equal."""
    spec.check_variant(variant)
    spec.check_gru_vjp(x, weights, h0, dy, dh_T)
    return gru_backward(gru_forward(x, weights, variant, h0), dy, dh_T)


# --------------------------------------------------------------------------- conv, pool, dense


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
    "time_maps",
    "to_numpy",
    "values_mask",
    "zero_pad2d",
]  # fmt: skip
