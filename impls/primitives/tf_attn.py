"""Attention's two ops in TensorFlow (issue 25): tf.linalg.matmul, and masked scores by tf.where (no Keras
MultiHeadAttention: that is the port's and the importer's)."""

from __future__ import annotations

from typing import Any

from .tf_core import tf


def matmul(a: Any, b: Any) -> Any:
    return tf.linalg.matmul(a, b)


def mask_scores(s: Any, key_mask: Any, causal: bool) -> Any:
    """-inf where a query may not attend: keys at padded steps (key_mask (B, Tk) bool, True where valid) and, when
    causal, keys after the query."""
    tq, tk = int(s.shape[-2]), int(s.shape[-1])
    keep = tf.ones((1, 1, tq, tk), dtype=tf.bool)
    if causal:
        keep = tf.logical_and(keep, tf.cast(tf.linalg.band_part(tf.ones((tq, tk)), -1, 0), tf.bool))
    if key_mask is not None:
        keep = tf.logical_and(keep, tf.cast(key_mask, tf.bool)[:, None, None, :])
    keep = tf.broadcast_to(keep, tf.shape(s))
    return tf.where(keep, s, tf.fill(tf.shape(s), tf.constant(float("-inf"), s.dtype)))



def prepend_token(x: Any, token: Any) -> Any:
    """A (1, 1, D) token before every row of x (B, T, D): tf.concat of the token tiled over the batch, then x."""
    return tf.concat([tf.tile(token, [tf.shape(x)[0], 1, 1]), x], axis=1)


__all__ = ["mask_scores", "matmul", "prepend_token"]
