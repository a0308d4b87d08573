"""ZeroPadding2D: NHWC, [[top, bottom], [left, right]] zeros around each image."""

from __future__ import annotations

from typing import ClassVar

from ..errors import ModelError, ShapeError
from .base import LayerSpec


class ZeroPad2D(LayerSpec):
    KIND = "zero_pad2d"
    OPS = ("zero_pad2d",)
    DEFAULTS: ClassVar[dict] = {"padding": [[1, 1], [1, 1]]}

    def validate(self, opts):
        try:
            (t, b), (l, r) = opts["padding"]
            pads = [[int(t), int(b)], [int(l), int(r)]]
        except (TypeError, ValueError):
            raise ModelError(f"zero_pad2d: padding must be [[top, bottom], [left, right]], got {opts['padding']!r}") from None
        if min(t, b, l, r) < 0:
            raise ModelError(f"zero_pad2d: pads must be >= 0, got {opts['padding']!r}")
        return {"padding": pads}

    def output_shape(self, opts, in_shape):
        if len(in_shape) != 4:
            raise ShapeError(f"zero_pad2d takes NHWC (B, H, W, C), got {in_shape}")
        (t, b), (l, r) = opts["padding"]
        return (in_shape[0], in_shape[1] + t + b, in_shape[2] + l + r, in_shape[3])

    def forward(self, ops, x, opts, w):
        (t, b), (l, r) = opts["padding"]
        return ops.zero_pad2d(x, (t, b, l, r))

    def vjp(self, x, opts, w, dy):
        (t, b), (l, r) = opts["padding"]
        return dy[:, t : dy.shape[1] - b, l : dy.shape[2] - r, :], {}


SPEC = ZeroPad2D()
