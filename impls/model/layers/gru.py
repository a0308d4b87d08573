"""GRU: (B, T, I) -> the sequence (B, T, H) or the last state (B, H), zero initial state, in one named variant.

Canonical weights are spec.GRUWeights' fields: W (I, 3H), U (H, 3H), b_x (3H,), b_h (3H,), gates (z, r, h).
Which variants a framework's layer computes is impls.GRU_VARIANTS; the importers and ports refuse the rest."""

from __future__ import annotations

from typing import ClassVar

from ...contract import formulas, spec
from ...contract.spec import GRUWeights
from ...primitives import numpy_impl as ref
from ..description import ModelError, ShapeError
from .base import LayerSpec, flag, positive_int


def weights(w: dict) -> GRUWeights:
    return GRUWeights(w["W"], w["U"], w["b_x"], w["b_h"])


class GRU(LayerSpec):
    KIND = "gru"
    REQUIRED = ("units",)
    DEFAULTS: ClassVar[dict] = {"variant": "reset_after", "return_sequences": False}

    def validate(self, opts):
        opts["units"] = positive_int(self.KIND, "units", opts["units"])
        if opts["variant"] not in spec.VARIANTS:
            raise ModelError(f"gru: variant {opts['variant']!r} is not one of {spec.VARIANTS}")
        opts["return_sequences"] = flag(self.KIND, "return_sequences", opts["return_sequences"])
        return opts

    def output_shape(self, opts, in_shape):
        if len(in_shape) != 3:
            raise ShapeError(f"gru takes (B, T, I), got {in_shape}")
        B, T, _ = in_shape
        return (B, T, opts["units"]) if opts["return_sequences"] else (B, opts["units"])

    def weight_shapes(self, opts, in_shape):
        H, I = opts["units"], in_shape[2]
        return {"W": (I, 3 * H), "U": (H, 3 * H), "b_x": (3 * H,), "b_h": (3 * H,)}

    def init(self, opts, in_shape, seed, dtype="float64"):
        w = spec.init_gru(in_shape[2], opts["units"], seed=seed, dtype=dtype)
        return {"W": w.W, "U": w.U, "b_x": w.b_x, "b_h": w.b_h}

    def flops(self, opts, in_shape):
        B, T, I = in_shape
        return formulas.gru_matmul_flops(B, T, I, opts["units"])

    def forward(self, ops, x, opts, w):
        y, h = ops.gru(x, weights(w), opts["variant"])
        return y if opts["return_sequences"] else h

    def vjp(self, x, opts, w, dy):
        seq = opts["return_sequences"]
        g = ref.gru_vjp(x, weights(w), opts["variant"], dy if seq else None, dh_T=None if seq else dy)
        return g["x"], {k: g[k] for k in ("W", "U", "b_x", "b_h")}


SPEC = GRU()
