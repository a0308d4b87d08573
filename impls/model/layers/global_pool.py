"""Global pooling over every spatial axis: (B, L, C) or (B, H, W, C) -> (B, C), the mean or the maximum (Keras'
GlobalAverage/MaxPooling1D/2D, torch's AdaptiveAvg/MaxPool to 1 then a flatten, ONNX's GlobalAveragePool /
GlobalMaxPool). The maximum's gradient goes to the first maximum in row-major order, as max_pool2d's does.

`masked` (the mean's option): where a (B, T) padding mask reaches a sequence (B, T, C), the mean is over each row's
valid steps only, sum(x * valid) / sum(valid): Keras' GlobalAveragePooling1D, which honours the mask it is given,
and torch's masked mean `(h * keep).sum(1) / keep.sum(1)`. False (torch's `h.mean(dim=1)`): the mean over every
step, padded ones included. Without a mask both are the plain mean. The output carries no mask."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ..errors import ShapeError
from .base import LayerSpec, flag


class GlobalAvgPool(LayerSpec):
    KIND = "global_avg_pool"
    OPS = ("mean", "mean_steps")
    DEFAULTS: ClassVar[dict] = {"masked": False}

    def validate(self, opts):
        return {"masked": flag(self.KIND, "masked", opts["masked"])}

    def output_shape(self, opts, in_shape):
        if len(in_shape) not in (3, 4):
            raise ShapeError(f"{self.KIND} takes (B, L, C) or (B, H, W, C), got {in_shape}")
        return (in_shape[0], in_shape[-1])

    def forward(self, ops, x, opts, w):
        return ops.mean(x, tuple(range(1, len(x.shape) - 1)))

    def forward_masked(self, ops, x, mask, opts, w):
        if mask is None or not opts["masked"]:
            return self.forward(ops, x, opts, w), None
        return ops.mean_steps(x, mask), None  # (B, C): each row's valid steps only

    def vjp(self, x, opts, w, dy):
        n = int(np.prod(x.shape[1:-1]))
        shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (x.shape[-1],)
        return np.broadcast_to(dy.reshape(shape) / n, x.shape).copy(), {}

    def vjp_masked(self, x, mask, opts, w, dy):
        if mask is None or not opts["masked"]:
            return self.vjp(x, opts, w, dy)
        v = np.asarray(mask, dy.dtype)  # (B, T)
        return (v / v.sum(axis=1, keepdims=True))[:, :, None] * dy[:, None, :], {}


class GlobalMaxPool(GlobalAvgPool):
    KIND = "global_max_pool"
    OPS = ("amax",)
    DEFAULTS: ClassVar[dict] = {}

    def validate(self, opts):
        return opts

    def forward_masked(self, ops, x, mask, opts, w):
        return self.forward(ops, x, opts, w), None

    def vjp_masked(self, x, mask, opts, w, dy):
        return self.vjp(x, opts, w, dy)

    def forward(self, ops, x, opts, w):
        return ops.amax(x, tuple(range(1, len(x.shape) - 1)))

    def vjp(self, x, opts, w, dy):
        B, C = x.shape[0], x.shape[-1]
        flat = x.reshape(B, -1, C)
        first = np.argmax(flat, axis=1)  # the first maximum in row-major order
        dx = np.zeros_like(flat, dtype=dy.dtype)
        dx[np.arange(B)[:, None], first, np.arange(C)[None, :]] = dy
        return dx.reshape(x.shape), {}


AVG = GlobalAvgPool()
MAX = GlobalMaxPool()
