"""The ONNX port's pools: max_pool2d and avg_pool2d (MaxPool, AveragePool on NCHW images) and the global pools.

Global pools are GlobalAveragePool / GlobalMaxPool + Flatten (float32) or ReduceMean / ReduceMax (float64: ONNX
Runtime 1.31 has no float64 global pool kernel, 'Could not find an implementation', measured). ONNX Runtime 1.31's
CPU AveragePool kernel is float32 only (limits.py): avg_pool2d is refused in float64 with that reason.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import convert
from ...contract import spec
from ...model.layers import pool2d as pool2d_layer
from .builder import CANON, EMITTERS, NCHW, TBF, _Graph, _perm, ort_kernel


@EMITTERS.register("avg_pool2d", check=ort_kernel("avg_pool2d"))
@EMITTERS.register("max_pool2d")
def pool2d(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    g.to(NCHW)
    geo = spec.check_pool2d(shape, **pool2d_layer.pool_kwargs(opts), op=layer.kind)
    attrs = {"kernel_shape": list(geo.pool), "strides": list(geo.stride), "pads": convert.pads_to_onnx(geo.pads)}
    if layer.kind == "avg_pool2d":
        g.apply("AveragePool", count_include_pad=int(opts["count_include_pad"]), **attrs)
    else:
        g.apply("MaxPool", **attrs)  # ONNX's MaxPool never lets a pad win, as the contract's


@EMITTERS.register("global_max_pool")
@EMITTERS.register("global_avg_pool")
def global_pool(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    """float32 on a channels-first map: GlobalAveragePool / GlobalMaxPool then Flatten, as torch.onnx.export writes
    AdaptiveAvgPool(1) + flatten. Otherwise (float64, which ONNX Runtime 1.31 has no global pool kernel for, or a
    channels-last value) ReduceMean / ReduceMax over the spatial axes, keepdims 0."""
    mean = layer.kind == "global_avg_pool"
    rank = len(shape)
    if g.dtype == np.float32:
        g.to(NCHW, rank)
        g.apply("GlobalAveragePool" if mean else "GlobalMaxPool")
        g.apply("Flatten", axis=1)
    else:
        if g.layout == TBF:
            g.to(CANON, rank)
        spatial = [k for k, c in enumerate(_perm(g.layout, rank)) if c not in (0, rank - 1)]
        g.apply("ReduceMean" if mean else "ReduceMax", g.const("axes", spatial), keepdims=0)
    g.layout = CANON


__all__ = ["global_pool", "pool2d"]
