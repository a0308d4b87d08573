"""The TensorFlow voice's sequence ops from primitives: the LSTM (one tf.scan), embeddings, and the index maps of padded
sequences (what they mean is impls/primitives/numpy_seq.py's). Re-exported by tf_impl.py."""

from __future__ import annotations

from ..contract import spec
from ..contract.spec import LSTMWeights
from .tf_core import _like, tf


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


def mean_steps(x, valid):
    """x (B, T, F) averaged over each row's valid steps: (B, F); what it means is numpy_seq.py's."""
    v = tf.cast(valid, x.dtype)
    return tf.reduce_sum(x * v[:, :, None], axis=1) / tf.reduce_sum(v, axis=1)[:, None]


def mask_steps(x, valid):
    """x (B, T, F) with the steps where valid is False set to 0."""
    return x * tf.cast(valid, x.dtype)[:, :, None]


def reverse_steps(x):
    """x (B, T, ...) with its time axis reversed."""
    return tf.reverse(x, axis=[1])


def concat(xs, axis: int = -1):
    return tf.concat(list(xs), axis=axis)
