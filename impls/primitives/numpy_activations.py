"""The NumPy reference's activations and loss, each forward with its hand-written backward beside it.

Re-exported by impls/primitives/numpy_impl.py (the reference voice), whose docstring states the conventions decided
here (relu'(0) = 0); kept apart so each module stays readable.
"""

from __future__ import annotations

import math

import numpy as np

from ..contract import spec


def sigmoid(x: np.ndarray) -> np.ndarray:
    # 1 / (1 + e^-x), written through tanh so that large |x| never overflows
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(x)


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


# --------------------------------------------------------------------------- issue 24's activations
# Each forward with its hand-written backward: dL/dx as one array. At a kink the gradient is the framework's: relu6
# and hard_sigmoid pass it only strictly inside (torch's hardtanh_backward, TF's Relu6Grad), clip at its bounds too
# (torch.clamp's, tf.clip_by_value's), hard_swish takes torch's branches (x < -3: 0, x <= 3: x / 3 + 1 / 2, else 1),
# leaky_relu the slope at 0 (x > 0 is False there, as in torch and TF).

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715
_erf = np.vectorize(math.erf, otypes=[np.float64])


def relu6(x: np.ndarray) -> np.ndarray:
    return np.minimum(np.maximum(x, 0), 6)


def relu6_vjp(x: np.ndarray, dy: np.ndarray) -> np.ndarray:
    return dy * ((x > 0) & (x < 6))


def hard_sigmoid(x: np.ndarray, alpha: float = 1 / 6, beta: float = 0.5) -> np.ndarray:
    """max(0, min(1, alpha x + beta)): ONNX's HardSigmoid; alpha 1/6, beta 1/2 is torch's and Keras 3's
    relu6(x + 3) / 6 (Keras 2's was 0.2 x + 0.5, ONNX's default alpha 0.2)."""
    return np.clip(alpha * x + beta, 0, 1)


def hard_sigmoid_vjp(x: np.ndarray, dy: np.ndarray, alpha: float = 1 / 6, beta: float = 0.5) -> np.ndarray:
    z = alpha * x + beta
    return dy * alpha * ((z > 0) & (z < 1))


def hard_swish(x: np.ndarray) -> np.ndarray:
    """x relu6(x + 3) / 6 (torch's Hardswish, Keras' hard_silu, ONNX's HardSwish)."""
    return x * relu6(x + 3) / 6


def hard_swish_vjp(x: np.ndarray, dy: np.ndarray) -> np.ndarray:
    return dy * np.where(x < -3, 0.0, np.where(x <= 3, x / 3 + 0.5, 1.0))


def silu(x: np.ndarray) -> np.ndarray:
    return x * sigmoid(x)


def silu_vjp(x: np.ndarray, dy: np.ndarray) -> np.ndarray:
    s = sigmoid(x)
    return dy * s * (1 + x * (1 - s))


def gelu(x: np.ndarray) -> np.ndarray:
    """x Phi(x) = x (1 + erf(x / sqrt 2)) / 2: the exact GELU (torch's approximate='none', Keras' activation "gelu")."""
    x = np.asarray(x)
    return (0.5 * x * (1 + _erf(x / math.sqrt(2.0)))).astype(x.dtype, copy=False)


def gelu_vjp(x: np.ndarray, dy: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    phi = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    return (dy * (0.5 * (1 + _erf(x / math.sqrt(2.0))) + x * phi)).astype(np.result_type(x, dy), copy=False)


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) / 2: torch's approximate='tanh', keras.ops.gelu's default."""
    return 0.5 * x * (1 + np.tanh(_SQRT_2_OVER_PI * (x + _GELU_CUBIC * x**3)))


def gelu_tanh_vjp(x: np.ndarray, dy: np.ndarray) -> np.ndarray:
    t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_CUBIC * x**3))
    return dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _SQRT_2_OVER_PI * (1 + 3 * _GELU_CUBIC * x * x))


def leaky_relu(x: np.ndarray, negative_slope: float) -> np.ndarray:
    return np.where(x > 0, x, negative_slope * x)


def leaky_relu_vjp(x: np.ndarray, dy: np.ndarray, negative_slope: float) -> np.ndarray:
    return np.where(x > 0, dy, negative_slope * dy)


def clip(x: np.ndarray, lo: float | None, hi: float | None) -> np.ndarray:
    """min(max(x, lo), hi), a bound None where there is none."""
    return np.clip(x, -np.inf if lo is None else lo, np.inf if hi is None else hi)


def clip_vjp(x: np.ndarray, dy: np.ndarray, lo: float | None, hi: float | None) -> np.ndarray:
    inside = (x >= (-np.inf if lo is None else lo)) & (x <= (np.inf if hi is None else hi))
    return dy * inside
