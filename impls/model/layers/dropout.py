"""Dropout: the identity at inference, which is all a certificate or a port computes (training steps run with it off)."""

from __future__ import annotations

from typing import ClassVar

from ..errors import ModelError
from .base import LayerSpec


class Dropout(LayerSpec):
    KIND = "dropout"
    KEEPS_MASK = True
    DEFAULTS: ClassVar[dict] = {"rate": 0.5}

    def validate(self, opts):
        rate = opts["rate"]
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= float(rate) < 1.0:
            raise ModelError(f"dropout: rate must be in [0, 1), got {rate!r}")
        return {"rate": float(rate)}

    def output_shape(self, opts, in_shape):
        return in_shape

    def forward(self, ops, x, opts, w):
        return x

    def vjp(self, x, opts, w, dy):
        return dy, {}


SPEC = Dropout()
