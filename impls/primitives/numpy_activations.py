"""The NumPy reference's activations and loss, each forward with its hand-written backward beside it.

Re-exported by impls/primitives/numpy_impl.py (the reference voice), whose docstring states the conventions decided
here (relu'(0) = 0); kept apart so each module stays readable.
"""

from __future__ import annotations

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
