"""Flatten: (B, ...) -> (B, prod(...)) in canonical memory order, so an NHWC feature map flattens (h, w, c) as Keras
does. A framework that flattens NCHW ((c, h, w), torch and ONNX) needs the next Dense's rows permuted: its port
does that (convert.flatten_rows_nhwc_to_nchw), the description never does."""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from .base import LayerSpec


class Flatten(LayerSpec):
    KIND = "flatten"
    OPS = ("flatten",)

    def output_shape(self, opts, in_shape):
        if len(in_shape) < 2:
            raise ShapeError(f"flatten needs (B, ...) of rank >= 2, got {in_shape}")
        return (in_shape[0], int(np.prod(in_shape[1:])))

    def forward(self, ops, x, opts, w):
        return ops.flatten(x)

    def vjp(self, x, opts, w, dy):
        return dy.reshape(x.shape), {}


SPEC = Flatten()
