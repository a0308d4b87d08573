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
from ...model.layers import adaptive_pool
from ...model.layers import pool2d as pool2d_layer
from .builder import CANON, EMITTERS, NCHW, TBF, _Graph, _perm, helper, ort_kernel


@EMITTERS.register("avg_pool2d", check=ort_kernel("avg_pool2d"))
@EMITTERS.register("max_pool2d")
def pool2d(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    """MaxPool / AveragePool. A ceil_mode pool is ceil_mode=1 with its own pads where no window is dropped; where
    torch's rule drops the last one (it would start in the trailing pad), ONNX Runtime 1.31's kernel drops it too
    but ONNX's shape inference does not (measured: 'Expected shape {1,1,5,5} does not match actual {1,1,4,4}', and a
    MatMul after it fails to load), so there the pool is written as `lowered` floor pools: a Pad (axes H and W: no
    PadFusion folds it into the pool) of the pads an average counts, then the pool with the overhang as pads."""
    g.to(NCHW)
    ceil = opts["ceil_mode"] and not drops_a_window(opts, shape)
    pre, floor = (None, {**opts, "ceil_mode": False}) if ceil else pool2d_layer.lowered(opts, shape)
    if pre is not None:
        t, b, l, r = pre
        zero = g.weight("value", np.zeros((), g.dtype))
        g.apply("Pad", g.const("pads", [t, l, b, r]), zero, g.const("axes", [2, 3]), mode="constant")
        shape = (shape[0], shape[1] + t + b, shape[2] + l + r, shape[3])
    geo = spec.check_pool2d(shape, **pool2d_layer.pool_kwargs(floor), op=layer.kind)
    attrs = {"kernel_shape": list(geo.pool), "strides": list(geo.stride), "pads": convert.pads_to_onnx(geo.pads)}
    if ceil:
        attrs["ceil_mode"] = 1
    if layer.kind == "avg_pool2d":
        g.apply("AveragePool", count_include_pad=int(floor["count_include_pad"]), **attrs)
    else:
        g.apply("MaxPool", **attrs)  # ONNX's MaxPool never lets a pad win, as the contract's


def drops_a_window(opts: dict, shape: tuple) -> bool:
    """Whether torch's ceil rule drops the last window on either axis (ceil((n + pads - k) / s) + 1 is one too many)."""
    (t, b), (l, r) = [[0, 0], [0, 0]] if opts["padding"] == "valid" else opts["padding"]
    return any(pool2d_layer.ceil_size(n, k, s, lo, hi) != -(-(n + lo + hi - k) // s) + 1
               for n, k, s, lo, hi in zip(shape[1:3], opts["pool_size"], opts["strides"], (t, l), (b, r), strict=True))


@EMITTERS.register("global_max_pool")
@EMITTERS.register("global_avg_pool")
def global_pool(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    """float32 on a channels-first map: GlobalAveragePool / GlobalMaxPool then Flatten, as torch.onnx.export writes
    AdaptiveAvgPool(1) + flatten. Otherwise (float64, which ONNX Runtime 1.31 has no global pool kernel for, or a
    channels-last value) ReduceMean / ReduceMax over the spatial axes, keepdims 0."""
    mean = layer.kind == "global_avg_pool"
    rank = len(shape)
    src = g.sources[i]
    if mean and opts.get("masked") and src is not None:  # the mean over each row's valid steps (t < its length)
        g.to(CANON, rank)
        lens = g.node("Unsqueeze", [g.lens[src], g.const("ax1", [1])])[0]  # (B, 1)
        valid = g.node("Less", [g.const("steps", np.arange(shape[1])[None, :], np.int32), lens])[0]  # (B, T)
        keep = g.node("Cast", [valid], to=helper.np_dtype_to_tensor_dtype(np.dtype(g.dtype)))[0]
        total = g.node("ReduceSum", [g.node("Mul", [g.value, g.node("Unsqueeze", [keep, g.const("ax2", [2])])[0]])[0],
                                     g.const("ax_t", [1])], keepdims=0)[0]  # (B, C)
        count = g.node("ReduceSum", [keep, g.const("ax_t", [1])], keepdims=1)[0]  # (B, 1)
        g.value, g.layout = g.node("Div", [total, count])[0], CANON
        return
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




def adaptive_matrix(n: int, out: int, dtype: Any) -> np.ndarray:
    """(out, n): row i averages torch's adaptive window i of an axis of n cells (1 / its size on each of its cells)."""
    m = np.zeros((out, n))
    for i, (a, b) in enumerate(adaptive_pool.windows(n, out)):
        m[i, a:b] = 1.0 / (b - a)
    return m.astype(dtype)


@EMITTERS.register("adaptive_avg_pool2d")
def adaptive_avg_pool2d(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    """ONNX has no adaptive pool. Windows that tile the map (H % OH == 0 and W % OW == 0) are an AveragePool of
    kernel = stride = (H / OH, W / OW) in float32; otherwise, and in float64 (ONNX Runtime's AveragePool is float32
    only), two MatMuls by constant matrices: (OH, H) @ x @ (W, OW) on NCHW, each row a window's 1 / size."""
    g.to(NCHW)
    (OH, OW), (H, W) = opts["output_size"], shape[1:3]
    kh, kw = adaptive_pool.uniform(H, OH), adaptive_pool.uniform(W, OW)
    if kh and kw and g.dtype == np.float32:
        g.apply("AveragePool", kernel_shape=[kh, kw], strides=[kh, kw])
        return
    g.value = g.node("MatMul", [g.const("rows", adaptive_matrix(H, OH, g.dtype), g.dtype), g.value])[0]
    g.apply("MatMul", g.const("cols", adaptive_matrix(W, OW, g.dtype).T, g.dtype))


__all__ = ["adaptive_avg_pool2d", "adaptive_matrix", "drops_a_window", "global_pool", "pool2d"]
