"""Pools: MaxPool and AveragePool on NCHW images (max_pool2d, avg_pool2d, ceil_mode=1 as ceil_mode; dilations and the
Indices output refused; ONNX's default stride is 1, not the window), and the global pools: GlobalAveragePool / GlobalMaxPool of an
NCW or NCHW map, and ReduceMean / ReduceMax over exactly its spatial axes (tf2onnx's GlobalAveragePooling, torch's
x.mean((2, 3))), as global_avg_pool / global_max_pool.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .context import REGISTRY, Context, attrs
from .convolution import spatial, window_padding
from .values import CHANNELS_FIRST, NCHW, Value


@REGISTRY.register("AveragePool", kinds=("avg_pool2d",))
@REGISTRY.register("MaxPool", kinds=("max_pool2d",))
def pool(ctx: Context, pos: int, node: Any) -> None:
    spatial(ctx, pos, node)
    a = attrs(node)
    if any(d != 1 for d in a.get("dilations", [1, 1])):
        raise ctx.refuse(pos, node, f"has dilations {a['dilations']}: pools without dilation only")
    if len(node.output) > 1 and node.output[1] and ctx.used(node.output[1]):
        raise ctx.refuse(pos, node, "uses its Indices output: a chain takes the pooled values only")
    window = tuple(a["kernel_shape"])
    if len(window) != 2:
        raise ctx.refuse(pos, node, f"pools {len(window)}-D (kernel_shape {list(window)}): 2-D only")
    strides = tuple(a.get("strides", [1, 1]))  # ONNX's default stride is 1, not the window
    opts = {"pool_size": list(window), "strides": list(strides),
            "padding": window_padding(ctx, pos, node, a, window, strides)}  # fmt: skip
    if a.get("ceil_mode", 0):  # ONNX's rule is torch's: a window starting in the trailing pad is dropped
        if opts["padding"] == "same":
            raise ctx.refuse(pos, node, f"has ceil_mode=1 with auto_pad {a.get('auto_pad')!r}: ceil_mode takes "
                             "explicit pads")  # fmt: skip
        opts["ceil_mode"] = True
    if node.op_type == "AveragePool":
        ctx.emit("avg_pool2d", node, {**opts, "count_include_pad": bool(a.get("count_include_pad", 0))})
    else:
        ctx.emit("max_pool2d", node, opts)
    ctx.set(Value(node.output[0], NCHW))


@REGISTRY.register("GlobalMaxPool", kinds=("global_max_pool", "permute"))
@REGISTRY.register("GlobalAveragePool", kinds=("global_avg_pool", "permute"))
def global_pool(ctx: Context, pos: int, node: Any) -> None:
    rank = len(ctx.value.axes)
    if rank not in (3, 4):
        raise ctx.refuse(pos, node, f"pools a rank-{rank} tensor: NCW or NCHW only")
    ctx.reinterpret(pos, node, CHANNELS_FIRST[rank], "pools a tensor whose axis 1 is not the channels")
    ctx.emit("global_avg_pool" if node.op_type == "GlobalAveragePool" else "global_max_pool", node, {})
    ctx.set(Value(node.output[0], (0, 1, *[None] * (rank - 2))))


@REGISTRY.register("ReduceMax", kinds=("global_max_pool",))
@REGISTRY.register("ReduceMean", kinds=("global_avg_pool",))
def reduce(ctx: Context, pos: int, node: Any) -> None:
    """A mean / max over exactly the spatial axes (tf2onnx's GlobalAveragePooling, torch's x.mean((2, 3))): a global
    pool."""
    a, v = attrs(node), ctx.value
    rank = len(v.axes)
    axes = a.get("axes") if ctx.opset < 18 else ctx.const(pos, node, 1)
    reduced = {int(k) % rank for k in np.asarray(axes).ravel()} if axes is not None else set(range(rank))
    canon = {v.axes[k] for k in reduced}
    if v.rows is not None or None in v.axes or v.rank not in (3, 4) or canon != set(range(1, v.rank - 1)):
        raise ctx.refuse(pos, node, f"reduces axes {sorted(reduced)} of axes {v.axes}: over the spatial axes only "
                         "(a global pool)")  # fmt: skip
    ctx.emit("global_avg_pool" if node.op_type == "ReduceMean" else "global_max_pool", node, {})
    keep = int(a.get("keepdims", 1))
    out = [None if k in reduced else (0 if v.axes[k] == 0 else 1) for k in range(rank) if keep or k not in reduced]
    ctx.set(Value(node.output[0], tuple(out)))


REGISTRY.absent("adaptive_avg_pool2d", "ONNX has no adaptive pool: exporters write torch's AdaptiveAvgPool2d as an "
                "AveragePool (the windows tile the map) or refuse it, and those import as what they are")

__all__ = ["global_pool", "pool", "reduce"]
