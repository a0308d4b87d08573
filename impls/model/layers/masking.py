"""Masking (Keras' layer): a step whose features all equal `mask_value` is padding. The output is the input with
those steps zeroed (as Keras computes it) and a (B, T) mask passes on to the recurrent layers, post-padded (the
contract's padded sequences; embedding.check_post_padded refuses anything else)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ...primitives import numpy_impl as ref
from ..errors import ModelError, ShapeError
from .base import LayerSpec
from .embedding import check_post_padded


class Masking(LayerSpec):
    KIND = "masking"
    OPS = ("values_mask", "mask_steps")
    DEFAULTS: ClassVar[dict] = {"mask_value": 0.0}

    def validate(self, opts):
        v = opts["mask_value"]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            raise ModelError(f"masking: mask_value must be a finite number, got {v!r}")
        return {"mask_value": float(v)}

    def output_shape(self, opts, in_shape):
        if len(in_shape) != 3:
            raise ShapeError(f"masking takes (B, T, F), got {in_shape}")
        return in_shape

    def forward_masked(self, ops, x, mask, opts, w):
        m = ops.values_mask(x, opts["mask_value"])
        return ops.mask_steps(x, m), m

    def makes_mask(self, opts, masked_input):
        return True

    def forward(self, ops, x, opts, w):
        return self.forward_masked(ops, x, None, opts, w)[0]

    def vjp(self, x, opts, w, dy):
        return ref.mask_steps(dy, ref.values_mask(x, opts["mask_value"])), {}

    def check_input(self, opts, x, where):
        check_post_padded(ref.values_mask(np.asarray(x), opts["mask_value"]), where)


SPEC = Masking()
