"""The TensorFlow voice's issue-24 activations from primitives (minimum, maximum, where, sigmoid, tanh, erf), no
tf.nn activation: relu6, hard_sigmoid(alpha, beta), hard_swish, silu, gelu (erf), gelu_tanh, leaky_relu, clip.
Gradients are tf.GradientTape's. Re-exported by tf_impl.py."""

from __future__ import annotations

import math

from .tf_core import tf


def _clamp(x, lo, hi):
    if lo is not None:
        x = tf.maximum(x, tf.constant(lo, x.dtype))
    if hi is not None:
        x = tf.minimum(x, tf.constant(hi, x.dtype))
    return x


def relu6(x):
    return _clamp(x, 0.0, 6.0)


def hard_sigmoid(x, alpha: float = 1 / 6, beta: float = 0.5):
    return _clamp(x * tf.constant(alpha, x.dtype) + tf.constant(beta, x.dtype), 0.0, 1.0)


def hard_swish(x):
    return x * _clamp(x + tf.constant(3.0, x.dtype), 0.0, 6.0) / tf.constant(6.0, x.dtype)


def silu(x):
    return x * tf.sigmoid(x)


def gelu(x):
    return 0.5 * x * (1.0 + tf.math.erf(x / tf.constant(math.sqrt(2.0), x.dtype)))


def gelu_tanh(x):
    c = tf.constant(math.sqrt(2.0 / math.pi), x.dtype)
    return 0.5 * x * (1.0 + tf.tanh(c * (x + tf.constant(0.044715, x.dtype) * x * x * x)))


def leaky_relu(x, negative_slope: float):
    return tf.where(x > 0, x, x * tf.constant(negative_slope, x.dtype))


def clip(x, lo: float | None, hi: float | None):
    return _clamp(x, lo, hi)


__all__ = ["clip", "gelu", "gelu_tanh", "hard_sigmoid", "hard_swish", "leaky_relu", "relu6", "silu"]
