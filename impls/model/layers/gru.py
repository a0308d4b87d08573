"""GRU: (B, T, I) -> the sequence or the final state, zero or given initial state, in one named variant, in one or two
directions, under a padding mask or not (rnn.py says what those mean).

Canonical weights are spec.GRUWeights' fields per direction: W (I, 3H), U (H, 3H), b_x (3H,), b_h (3H,), gates
(z, r, h). Which variants a framework's layer computes is impls.GRU_VARIANTS; the importers and ports refuse the rest."""

from __future__ import annotations

from typing import ClassVar

from ...contract import formulas, spec
from ...contract.spec import GRUWeights
from ...primitives import numpy_impl as ref
from ..errors import ModelError
import numpy as np

from .rnn import CELL_WEIGHTS, RNN_OPS, Recurrent, batched


def weights(w: dict) -> GRUWeights:
    return GRUWeights(*(w[k] for k in CELL_WEIGHTS))


class GRU(Recurrent):
    KIND = "gru"
    OPS = ("gru", *RNN_OPS)
    GATES = 3
    DEFAULTS: ClassVar[dict] = {"variant": "reset_after", **Recurrent.DEFAULTS}

    def validate(self, opts):
        opts = super().validate(opts)
        if opts["variant"] not in spec.VARIANTS:
            raise ModelError(f"gru: variant {opts['variant']!r} is not one of {spec.VARIANTS}")
        return opts

    def init_cell(self, I, H, seed, dtype):
        w = spec.init_gru(I, H, seed=seed, dtype=dtype)
        return {"W": w.W, "U": w.U, "b_x": w.b_x, "b_h": w.b_h}

    def cell_flops(self, opts, in_shape):
        B, T, I = in_shape
        return formulas.gru_matmul_flops(B, T, I, opts["units"])

    def cell(self, ops, x, opts, w):
        return ops.gru(x, weights(w), opts["variant"], batched(ops, x, w.get("h0")))[0]

    def cell_vjp(self, x, opts, w, dy):
        h0 = w.get("h0")
        g = ref.gru_vjp(x, weights(w), opts["variant"], dy, h0=None if h0 is None else np.broadcast_to(h0, (x.shape[0], len(h0))))
        out = {k: g[k] for k in CELL_WEIGHTS}
        if h0 is not None:
            out["h0"] = g["h0"].sum(0)  # broadcast over the batch
        return g["x"], out


SPEC = GRU()
