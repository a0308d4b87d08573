"""Global pooling over every spatial axis: (B, L, C) or (B, H, W, C) -> (B, C), the mean or the maximum (Keras'
GlobalAverage/MaxPooling1D/2D, torch's AdaptiveAvg/MaxPool to 1 then a flatten, ONNX's GlobalAveragePool /
GlobalMaxPool). The maximum's gradient goes to the first maximum in row-major order, as max_pool2d's does."""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from .base import LayerSpec


class GlobalAvgPool(LayerSpec):
    KIND = "global_avg_pool"
    OPS = ("mean",)

    def output_shape(self, opts, in_shape):
        if len(in_shape) not in (3, 4):
            raise ShapeError(f"{self.KIND} takes (B, L, C) or (B, H, W, C), got {in_shape}")
        return (in_shape[0], in_shape[-1])

    def forward(self, ops, x, opts, w):
        return ops.mean(x, tuple(range(1, len(x.shape) - 1)))

    def vjp(self, x, opts, w, dy):
        n = int(np.prod(x.shape[1:-1]))
        shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (x.shape[-1],)
        return np.broadcast_to(dy.reshape(shape) / n, x.shape).copy(), {}


class GlobalMaxPool(GlobalAvgPool):
    KIND = "global_max_pool"
    OPS = ("amax",)

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
