"""LSTM: (B, T, I) -> the sequence or the final state, in one or two directions, under a padding mask or not.

Canonical weights are spec.LSTMWeights' fields per direction: W (I, 4H), U (H, 4H), b_x (4H,), b_h (4H,), gates
(i, f, g, o), zero initial state, sigmoid gates and tanh cell (anything else, peepholes, a projection, a clip, coupled
input-forget gates, is refused by the importers with the reason). What the directions, merges and masks mean is rnn.py's."""

from __future__ import annotations

from ...contract import formulas, spec
from ...contract.spec import LSTMWeights
from ...primitives import numpy_impl as ref
import numpy as np

from .rnn import CELL_WEIGHTS, RNN_OPS, Recurrent, batched


def weights(w: dict) -> LSTMWeights:
    return LSTMWeights(*(w[k] for k in CELL_WEIGHTS))


class LSTM(Recurrent):
    KIND = "lstm"
    OPS = ("lstm", *RNN_OPS)
    GATES = 4

    def init_cell(self, I, H, seed, dtype):
        w = spec.init_lstm(I, H, seed=seed, dtype=dtype)
        return {"W": w.W, "U": w.U, "b_x": w.b_x, "b_h": w.b_h}

    def cell_flops(self, opts, in_shape):
        B, T, I = in_shape
        return formulas.lstm_matmul_flops(B, T, I, opts["units"])

    def cell(self, ops, x, opts, w):
        return ops.lstm(x, weights(w), batched(ops, x, w.get("h0")), batched(ops, x, w.get("c0")))[0]

    def cell_vjp(self, x, opts, w, dy):
        given = [k for k in ("h0", "c0") if k in w]
        states = {k: np.broadcast_to(w[k], (x.shape[0], len(w[k]))) for k in given}
        g = ref.lstm_vjp(x, weights(w), dy, **states)
        return g["x"], {k: g[k] for k in CELL_WEIGHTS} | {k: g[k].sum(0) for k in given}  # broadcast over the batch


SPEC = LSTM()
