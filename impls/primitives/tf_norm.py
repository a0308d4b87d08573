"""TensorFlow from primitives: local response normalization across the last (channel) axis as a sum of `size` shifted
slices of the zero-padded squares (not tf.nn.local_response_normalization: its window is symmetric only and its alpha
is not divided by the size)."""

from __future__ import annotations

from typing import Any

from .tf_core import tf


def lrn(x: Any, size: int, alpha: float, beta: float, bias: float, before: int) -> Any:
    rank, c = len(x.shape), int(x.shape[-1])
    sq = tf.pad(x * x, [[0, 0]] * (rank - 1) + [[before, size - 1 - before]])
    s = tf.add_n([sq[..., k:k + c] for k in range(size)])
    return x / tf.pow(bias + (alpha / size) * s, beta)


__all__ = ["lrn"]
