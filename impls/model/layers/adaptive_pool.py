"""adaptive_avg_pool2d (issue 24): torch's AdaptiveAvgPool2d to any output size on NHWC.

Output cell (i, j) of an (OH, OW) output is the mean of the input rows floor(i * H / OH) .. ceil((i + 1) * H / OH)
(end excluded) and the columns likewise: windows of varying size that may overlap (H % OH != 0) or repeat cells
(H < OH). Output size 1 is global_avg_pool's mean (torch's importer keeps that kind for it); where H % OH == 0 and
W % OW == 0 it is avg_pool2d with pool = stride = (H / OH, W / OW), which the ports write. ONNX has no adaptive op."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ..errors import ShapeError
from .base import LayerSpec, int_pair


def windows(n: int, out: int) -> list[tuple[int, int]]:
    """torch's adaptive windows along one axis: [floor(i * n / out), ceil((i + 1) * n / out)) for i < out."""
    return [((i * n) // out, -(-((i + 1) * n) // out)) for i in range(out)]


def uniform(n: int, out: int) -> int | None:
    """The window (= stride) where every window is one size and they tile the axis (n % out == 0), else None."""
    return n // out if n % out == 0 else None


class AdaptiveAvgPool2D(LayerSpec):
    KIND = "adaptive_avg_pool2d"
    OPS = ("mean", "concat")
    REQUIRED = ("output_size",)

    def validate(self, opts):
        return {"output_size": int_pair(self.KIND, "output_size", opts["output_size"])}

    def output_shape(self, opts, in_shape):
        if len(in_shape) != 4:
            raise ShapeError(f"{self.KIND} takes NHWC (B, H, W, C), got {tuple(in_shape)}")
        return (in_shape[0], *opts["output_size"], in_shape[3])

    def forward(self, ops, x, opts, w):
        (OH, OW), (H, W) = opts["output_size"], (int(x.shape[1]), int(x.shape[2]))
        rows = []
        for h0, h1 in windows(H, OH):
            cells = [ops.mean(x[:, h0:h1, w0:w1, :], (1, 2), keepdims=True) for w0, w1 in windows(W, OW)]
            rows.append(ops.concat(cells, 2))
        return ops.concat(rows, 1)

    def vjp(self, x, opts, w, dy):
        (OH, OW), (H, W) = opts["output_size"], x.shape[1:3]
        dx = np.zeros(x.shape, dtype=np.result_type(x.dtype, dy.dtype))
        for i, (h0, h1) in enumerate(windows(H, OH)):
            for j, (w0, w1) in enumerate(windows(W, OW)):
                dx[:, h0:h1, w0:w1, :] += dy[:, i : i + 1, j : j + 1, :] / ((h1 - h0) * (w1 - w0))
        return dx, {}

    def flops(self, opts, in_shape):
        return 0


SPEC = AdaptiveAvgPool2D()
