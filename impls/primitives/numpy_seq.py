"""The NumPy reference for sequence layers: the LSTM, embeddings, and the index maps of padded sequences.

Each forward has its hand-written backward beside it (`*_vjp`), as in numpy_impl.py, which re-exports these.

Padded sequences (the contract, docs/DESIGN.md "Recurrent layers"): post-padded, row b's first `lengths[b]` steps
valid. `time_maps(lengths, T)` gives what a recurrent layer needs to honour them with a whole-sequence cell:
- `valid[b, t] = t < lengths[b]`;
- `hold[b, t] = min(t, lengths[b] - 1)` clipped at 0, the step whose output a padded step repeats (Keras' default);
- `rev[b, t] = lengths[b] - 1 - t` for a valid step, `t` for a padded one: each row's valid prefix reversed, an
  involution, so the backward direction runs over exactly the valid steps, last first, and maps back the same way;
- `nonempty[b, t] = lengths[b] > 0`: a row with no valid step holds zeros (its state never left the zero one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..contract import spec
from ..contract.spec import LSTMWeights


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


# --------------------------------------------------------------------------- LSTM


@dataclass(frozen=True)
class LSTMTape:
    x: np.ndarray  # (B, T, I)
    w: LSTMWeights  # cast to x's dtype
    h_prev: np.ndarray  # (B, T, H) h_{t-1} entering step t
    c_prev: np.ndarray  # (B, T, H) c_{t-1} entering step t
    gates: np.ndarray  # (B, T, 4H) i, f, g, o after their activations
    c: np.ndarray  # (B, T, H) cell states c_1 .. c_T
    y: np.ndarray  # (B, T, H) outputs h_1 .. h_T


def lstm_forward(x: np.ndarray, weights: LSTMWeights, h0=None, c0=None) -> LSTMTape:
    """i, f, g, o = sigmoid, sigmoid, tanh, sigmoid of x_t W + b_x + h_{t-1} U + b_h (gate blocks in that order);
    c_t = f * c_{t-1} + i * g; h_t = o * tanh(c_t). Zero initial state unless h0 / c0 are given."""
    B, T, _, H = spec.check_lstm(x.shape, weights, None if h0 is None else np.shape(h0), None if c0 is None else np.shape(c0))
    w = weights.map(lambda a: np.asarray(a, dtype=x.dtype))
    h = np.zeros((B, H), x.dtype) if h0 is None else np.asarray(h0, x.dtype)
    c = np.zeros((B, H), x.dtype) if c0 is None else np.asarray(c0, x.dtype)
    hp, cp, gs, cs, ys = [], [], [], [], []
    for t in range(T):
        hp.append(h)
        cp.append(c)
        a = x[:, t] @ w.W + w.b_x + h @ w.U + w.b_h
        i, f, g, o = _sigmoid(a[:, :H]), _sigmoid(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), _sigmoid(a[:, 3 * H:])
        c = f * c + i * g
        h = o * np.tanh(c)
        gs.append(np.concatenate([i, f, g, o], axis=1))
        cs.append(c)
        ys.append(h)
    st = lambda v: np.stack(v, axis=1)
    return LSTMTape(x, w, st(hp), st(cp), st(gs), st(cs), st(ys))


def lstm(x: np.ndarray, weights: LSTMWeights, h0=None, c0=None):
    """x (B, T, I) -> (y (B, T, H), h_T (B, H), c_T (B, H))."""
    tape = lstm_forward(x, weights, h0, c0)
    return tape.y, tape.y[:, -1], tape.c[:, -1]


def lstm_backward(tape: LSTMTape, dy=None, dh_T=None, dc_T=None) -> dict[str, np.ndarray]:
    """Backpropagation through time. Per step, from dh (dy_t plus what flows back) and dc:
        do = dh tanh(c);  dc += dh o (1 - tanh(c)^2);  di = dc g;  dg = dc i;  df = dc c_{t-1};  dc_{t-1} = dc f
        da = [di i(1-i), df f(1-f), dg (1-g^2), do o(1-o)];  dx_t = da W^T;  dh_{t-1} = da U^T
    and dW = sum x^T da, dU = sum h_{t-1}^T da, db_x = db_h = sum da."""
    w, x = tape.w, tape.x
    B, T, H = tape.y.shape
    dt = x.dtype
    if dy is not None:
        spec.check_dy("lstm_vjp", np.shape(dy), (B, T, H))
        dy = np.asarray(dy, dt)
    dh = np.zeros((B, H), dt) if dh_T is None else np.asarray(dh_T, dt)
    dc = np.zeros((B, H), dt) if dc_T is None else np.asarray(dc_T, dt)
    da = np.empty((B, T, 4 * H), dt)
    for t in reversed(range(T)):
        if dy is not None:
            dh = dh + dy[:, t]
        gt = tape.gates[:, t]
        i, f, g, o = gt[:, :H], gt[:, H:2 * H], gt[:, 2 * H:3 * H], gt[:, 3 * H:]
        tc = np.tanh(tape.c[:, t])
        dc = dc + dh * o * (1.0 - tc * tc)
        da[:, t] = np.concatenate([dc * g * i * (1 - i), dc * tape.c_prev[:, t] * f * (1 - f), dc * i * (1 - g * g),
                                   dh * tc * o * (1 - o)], axis=1)
        dc = dc * f
        dh = da[:, t] @ w.U.T
    db = da.sum(axis=(0, 1))
    return {"x": da @ w.W.T, "W": np.einsum("bti,btk->ik", x, da), "U": np.einsum("bth,btk->hk", tape.h_prev, da),
            "b_x": db, "b_h": db.copy(), "h0": dh, "c0": dc}


def lstm_vjp(x, weights: LSTMWeights, dy=None, h0=None, c0=None, dh_T=None, dc_T=None) -> dict[str, np.ndarray]:
    """{x, W, U, b_x, b_h, h0, c0: gradient} of <dy, y> + <dh_T, h_T> + <dc_T, c_T>."""
    if dy is None and dh_T is None and dc_T is None:
        raise ValueError("lstm_vjp needs dy, dh_T or dc_T; got none")
    return lstm_backward(lstm_forward(np.asarray(x), weights, h0, c0), dy, dh_T, dc_T)


# --------------------------------------------------------------------------- embedding


def embedding(ids: np.ndarray, table: np.ndarray) -> np.ndarray:
    """ids (B, T) integers -> table rows (B, T, D). Ids are checked at the model's boundary (Model.check_input)."""
    return table[np.asarray(ids)]


def embedding_vjp(ids: np.ndarray, table: np.ndarray, dy: np.ndarray) -> dict[str, np.ndarray]:
    """dL/dtable: each row gathers the dy of every position that looked it up (repeats add). Ids have none."""
    g = np.zeros_like(table, dtype=dy.dtype)
    np.add.at(g, np.asarray(ids), dy)
    return {"table": g}


# --------------------------------------------------------------------------- masks and padded sequences


def ids_mask(ids: np.ndarray) -> np.ndarray:
    """Keras' Embedding(mask_zero=True): id 0 is padding. (B, T) bool."""
    return np.asarray(ids) != 0


def values_mask(x: np.ndarray, value: float) -> np.ndarray:
    """Keras' Masking(mask_value): a step is padding when every feature equals the value. (B, T) bool."""
    return np.any(x != value, axis=-1)


def lengths_of(mask: np.ndarray) -> np.ndarray:
    """Valid steps per row, (B,) int64, of a post-padded mask; the reference refuses any other (the contract's
    padded sequences), naming the row. The other voices sum alone: their first layer's mask is checked at the
    model's boundary (Model.check_input)."""
    mask = np.asarray(mask, bool)
    lengths = np.sum(mask, axis=1).astype(np.int64)
    bad = np.flatnonzero((mask != (np.arange(mask.shape[1])[None, :] < lengths[:, None])).any(axis=1))
    if bad.size:
        raise ValueError(f"padding mask row {int(bad[0])} is not post-padded: {mask[bad[0]].astype(int).tolist()}")
    return lengths


def time_maps(lengths: np.ndarray, T: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(valid, hold, rev, nonempty), each (B, T): bool, int64, int64, bool; see the module's docstring."""
    t = np.arange(T)[None, :]
    L = np.asarray(lengths, dtype=np.int64)[:, None]
    valid = t < L
    hold = np.clip(np.minimum(t, L - 1), 0, None)
    rev = np.where(valid, L - 1 - t, t)
    return valid, hold, rev, np.broadcast_to(L > 0, valid.shape).copy()


def take_steps(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """x (B, T, F), idx (B, T') int -> x[b, idx[b, t]] (B, T', F)."""
    return np.take_along_axis(x, np.asarray(idx)[:, :, None], axis=1)


def take_steps_vjp(x_shape, idx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    g = np.zeros(x_shape, dtype=dy.dtype)
    b = np.arange(x_shape[0])[:, None]
    np.add.at(g, (b, np.asarray(idx)), dy)
    return g


def mean_steps(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """x (B, T, F) averaged over each row's valid steps: (B, F), sum(x * valid) / sum(valid) (Keras'
    GlobalAveragePooling1D under a padding mask; a masked mean in torch)."""
    v = np.asarray(valid, x.dtype)
    return (x * v[:, :, None]).sum(axis=1) / v.sum(axis=1)[:, None]


def mask_steps(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """x (B, T, F) with the steps where valid is False set to 0."""
    return x * np.asarray(valid, x.dtype)[:, :, None]


__all__ = ["LSTMTape", "embedding", "embedding_vjp", "ids_mask", "lengths_of", "lstm", "lstm_backward", "lstm_forward",
           "lstm_vjp", "mask_steps", "mean_steps", "take_steps", "take_steps_vjp", "time_maps", "values_mask"]
