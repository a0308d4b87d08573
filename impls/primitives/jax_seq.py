"""The JAX voice's recurrent and sequence ops from primitives: the GRU and the LSTM (one input matmul, then one lax.scan
over time), embeddings, and the index maps of padded sequences (what they mean is impls/primitives/numpy_seq.py's).
Re-exported by jax_impl.py; jax_grads.py differentiates `_gru`."""

from __future__ import annotations

from typing import Any

from ..contract import spec
from ..contract.spec import GRUWeights, LSTMWeights
from .jax_core import _jit, _like, jnp, lax


def _gru(x, W, U, b_x, b_h, h0, variant):
    """x (B, T, I) -> (y (B, T, H), h_T (B, H)): one input matmul for every step, then lax.scan over time."""
    H = U.shape[0]
    xp = jnp.matmul(x, W) + (b_x if variant == "reset_after" else b_x + b_h)  # (B, T, 3H), gates z, r, h
    U_zr, U_h = U[:, : 2 * H], U[:, 2 * H :]

    def step(h, xp_t):  # h (B, H), xp_t (B, 3H)
        if variant == "reset_after":  # cuDNN, torch.nn.GRU, Keras default: r multiplies (h U_h + b_hh)
            hp = jnp.matmul(h, U) + b_h
            z = lax.logistic(xp_t[:, :H] + hp[:, :H])
            r = lax.logistic(xp_t[:, H : 2 * H] + hp[:, H : 2 * H])
            h_tilde = jnp.tanh(xp_t[:, 2 * H :] + r * hp[:, 2 * H :])
        else:  # seed, reset_before, chung: r before the recurrent product
            hp = jnp.matmul(h, U_zr)
            z = lax.logistic(xp_t[:, :H] + hp[:, :H])
            r = lax.logistic(xp_t[:, H : 2 * H] + hp[:, H:])
            h_tilde = jnp.tanh(xp_t[:, 2 * H :] + jnp.matmul(r * h, U_h))
        if variant == "seed":  # (1 - z) * h (+) r * h~, with a (+) b = (a + b) / 2
            h = ((1.0 - z) * h + r * h_tilde) / 2.0
        elif variant == "chung":
            h = (1.0 - z) * h + z * h_tilde
        else:
            h = z * h + (1.0 - z) * h_tilde
        return h, h

    h_T, ys = lax.scan(step, h0, jnp.swapaxes(xp, 0, 1))  # ys (T, B, H)
    return jnp.swapaxes(ys, 0, 1), h_T


_gru_jit = _jit(_gru, "variant")


def _gru_args(x, weights: GRUWeights, h0):
    B, H = x.shape[0], weights.U.shape[0]
    h = jnp.zeros((B, H), x.dtype) if h0 is None else _like(h0, x)
    return (x, *(_like(getattr(weights, k), x) for k in ("W", "U", "b_x", "b_h")), h)


def gru(x: Any, weights: GRUWeights, variant: str, h0: Any = None) -> tuple[Any, Any]:
    spec.check_variant(variant)
    spec.check_gru(x.shape, weights, None if h0 is None else h0.shape)
    return _gru_jit(*_gru_args(x, weights, h0), variant=variant)


# --------------------------------------------------------------------------- LSTM, embeddings, padded sequences


def _lstm(x, W, U, b_x, b_h, h0, c0):
    """x (B, T, I) -> (y (B, T, H), h_T, c_T): one input matmul for every step, then lax.scan over time with the
    gates (i, f, g, o) = sigmoid, sigmoid, tanh, sigmoid; c = f * c + i * g; h = o * tanh(c)."""
    H = U.shape[0]
    xp = jnp.matmul(x, W) + b_x  # (B, T, 4H)

    def step(state, xp_t):
        h, c = state
        a = xp_t + (jnp.matmul(h, U) + b_h)
        i, f = lax.logistic(a[:, :H]), lax.logistic(a[:, H : 2 * H])
        g, o = jnp.tanh(a[:, 2 * H : 3 * H]), lax.logistic(a[:, 3 * H :])
        c = f * c + i * g
        h = o * jnp.tanh(c)
        return (h, c), h

    (h_T, c_T), ys = lax.scan(step, (h0, c0), jnp.swapaxes(xp, 0, 1))  # ys (T, B, H)
    return jnp.swapaxes(ys, 0, 1), h_T, c_T


_lstm_jit = _jit(_lstm)


def lstm(x: Any, weights: LSTMWeights, h0: Any = None, c0: Any = None) -> tuple[Any, Any, Any]:
    """x (B, T, I) -> (y (B, T, H), h_T (B, H), c_T (B, H)); zero initial state unless h0 / c0 are given."""
    B, _, _, H = spec.check_lstm(x.shape, weights, None if h0 is None else tuple(h0.shape),
                                 None if c0 is None else tuple(c0.shape))
    h = jnp.zeros((B, H), x.dtype) if h0 is None else _like(h0, x)
    c = jnp.zeros((B, H), x.dtype) if c0 is None else _like(c0, x)
    return _lstm_jit(x, *(_like(getattr(weights, k), x) for k in ("W", "U", "b_x", "b_h")), h, c)


def embedding(ids: Any, table: Any) -> Any:
    """ids (B, T) integers -> table rows (B, T, D): a gather (jnp.take). Ids are checked at the model's boundary
    (Model.check_input): JAX's own gather would clamp or fill an id outside the table, silently."""
    return jnp.take(table, ids, axis=0)


def ids_mask(ids: Any) -> Any:
    """Keras' Embedding(mask_zero=True): id 0 is padding. (B, T) bool."""
    return ids != 0


def values_mask(x: Any, value: float) -> Any:
    """Keras' Masking(mask_value): a step is padding when every feature equals the value. (B, T) bool."""
    return jnp.any(x != value, axis=-1)


def lengths_of(mask: Any) -> Any:
    """Valid steps per row (B,): the sum alone (the mask was checked post-padded at the model's boundary). Traced
    under jit: everything that uses it is an index map, never a shape."""
    return jnp.sum(mask.astype(jnp.int32), axis=1)


def time_maps(lengths: Any, T: int) -> tuple[Any, Any, Any, Any]:
    """(valid, hold, rev, nonempty), each (B, T); what they mean is impls/primitives/numpy_seq.py's."""
    t = jnp.arange(T, dtype=lengths.dtype)[None, :]
    L = lengths[:, None]
    valid = t < L
    hold = jnp.maximum(jnp.minimum(t, L - 1), 0)
    rev = jnp.where(valid, L - 1 - t, t)
    return valid, hold, rev, jnp.broadcast_to(L > 0, valid.shape)


def take_steps(x: Any, idx: Any) -> Any:
    """x (B, T, F), idx (B, T') int -> x[b, idx[b, t]] (B, T', F)."""
    return jnp.take_along_axis(x, idx[:, :, None], axis=1)


def mean_steps(x: Any, valid: Any) -> Any:
    """x (B, T, F) averaged over each row's valid steps: (B, F); what it means is numpy_seq.py's."""
    v = valid.astype(x.dtype)
    return jnp.sum(x * v[:, :, None], axis=1) / jnp.sum(v, axis=1)[:, None]


def mask_steps(x: Any, valid: Any) -> Any:
    """x (B, T, F) with the steps where valid is False set to 0."""
    return x * valid.astype(x.dtype)[:, :, None]


def reverse_steps(x: Any) -> Any:
    """x (B, T, ...) with its time axis reversed."""
    return jnp.flip(x, axis=1)


def concat(xs: Any, axis: int = -1) -> Any:
    return jnp.concatenate(list(xs), axis=axis)
