"""Conv: conv1d on (B, C, L), conv2d on NCHW images, and depthwise_conv2d where the group is the input channels,
one input channel per group (Keras' DepthwiseConv2D); and the 2-D window's padding, which the pools share.

Kernels go to the canonical layouts (OIHW -> HWIO by convert.oihw_to_hwio, (F, C/groups, K) -> (K, C/groups, F));
pads or auto_pad become the description's padding: 'valid', 'same' (SAME_UPPER: TensorFlow's, the odd pixel after)
or explicit [[t, b], [l, r]] (SAME_LOWER as its pads, the odd pixel before). A Conv on a value whose channels are
not on axis 1 (a (B, T, F) sequence) gets a permute layer first.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import convert
from ...contract import spec
from .context import REGISTRY, Context, as_str, attrs, scope
from .values import NCHW, NCW, Value


def spatial(ctx: Context, pos: int, node: Any) -> None:
    """The node reads an NCHW image. A pooled (N, C, 1, 1) value the description holds as (B, C) (ONNX's densenet121:
    GlobalAveragePool, then its classifier a 1x1 Conv) becomes the (B, 1, 1, C) map by a reshape layer first."""
    v = ctx.value
    if v.axes == (0, 1, None, None) and v.rows is None:
        c = int(ctx.shape(node.input[0])[1])
        ctx.emit("reshape", node, {"target_shape": [1, 1, c]}, name=f"{scope(node) or node.op_type.lower()}_map")
        ctx.set(Value(v.name, NCHW))
        ctx.notes.append(f"node {pos} {node.name!r} reads the pooled (N, {c}, 1, 1) as an image: the description's "
                         f"(B, {c}) reshaped to the (B, 1, 1, {c}) map first")  # fmt: skip
    if ctx.value.axes != NCHW:
        raise ctx.refuse(pos, node, f"takes an image in another layout than NCHW (axes {ctx.value.axes} of NHWC)")


def window_padding(ctx: Context, pos: int, node: Any, a: dict, window: tuple[int, int], strides: tuple[int, int]) -> Any:
    """The node's pads or auto_pad as the description's padding: 'valid', 'same' or [[t, b], [l, r]]."""
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto == "VALID":
        return "valid"
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        if auto == "SAME_UPPER":
            return "same"  # TensorFlow's 'same': the odd pixel after
        _, _, h, w = ctx.shape(node.input[0])
        (t, b), (l, r) = (spec.same_pads(n, k, s) for n, k, s in zip((h, w), window, strides))
        return [[b, t], [r, l]]  # SAME_LOWER: the odd pixel before
    pads = a.get("pads", [0, 0, 0, 0])
    if len(pads) != 4 or min(pads) < 0:
        raise ctx.refuse(pos, node, f"has pads {list(pads)}: 2-D non-negative pads only")
    if not any(pads):
        return "valid"
    (t, b), (l, r) = convert.pads_from_onnx(pads)
    return [[t, b], [l, r]]


def _conv1d(ctx: Context, pos: int, node: Any, W: np.ndarray) -> None:
    """Conv on (B, C, L): conv1d, kernel (F, C/groups, K) -> (K, C/groups, F); pads [left, right] (or 'valid'),
    auto_pad SAME_UPPER as 'same' (TensorFlow's), SAME_LOWER and VALID as their pads."""
    ctx.reinterpret(pos, node, NCW, "is a 1-D Conv reading channels on an axis that is not the channels")
    a = attrs(node)
    bias = ctx.const(pos, node, 2)
    F, _, K = W.shape
    (s,), (d,) = a.get("strides", [1]), a.get("dilations", [1])
    auto = as_str(a.get("auto_pad", b"NOTSET"))
    L = ctx.shape(node.input[0])[2]
    if auto == "SAME_UPPER":
        padding: Any = "same"
    elif auto == "SAME_LOWER":
        lo, hi = spec.same_pads(L, (K - 1) * d + 1, s)
        padding = [hi, lo]
    else:
        pads = [0, 0] if auto == "VALID" else list(a.get("pads", [0, 0]))
        if len(pads) != 2 or min(pads) < 0:
            raise ctx.refuse(pos, node, f"has pads {pads}: 1-D non-negative pads only")
        padding = [int(pads[0]), int(pads[1])] if any(pads) else "valid"
    opts = {"filters": int(F), "kernel_size": int(K), "strides": int(s), "dilation": int(d), "padding": padding,
            "groups": int(a.get("group", 1)), "use_bias": bias is not None}  # fmt: skip
    weights = {"kernel": np.ascontiguousarray(np.transpose(W, (2, 1, 0)))}
    if bias is not None:
        weights["bias"] = np.asarray(bias)
    ctx.emit("conv1d", node, opts, weights)
    ctx.set(Value(node.output[0], NCW))


REGISTRY.absent("separable_conv2d", "ONNX has no separable convolution op: its exporters write two Conv nodes (group = C, "
                                    "then 1x1), which import as depthwise_conv2d and conv2d")  # fmt: skip

@REGISTRY.register("Conv", kinds=("conv1d", "conv2d", "depthwise_conv2d", "permute"))
def conv(ctx: Context, pos: int, node: Any) -> None:
    W = ctx.const(pos, node, 1)
    if W.ndim == 3:
        return _conv1d(ctx, pos, node, W)
    spatial(ctx, pos, node)
    a = attrs(node)
    if W.ndim != 4:
        raise ctx.refuse(pos, node, f"is a {W.ndim - 2}-D convolution (W.shape={W.shape}): 1-D and 2-D only")
    bias = ctx.const(pos, node, 2)
    O, Ig, KH, KW = W.shape
    groups, C = int(a.get("group", 1)), ctx.shape(node.input[0])[1]
    strides, dil = tuple(a.get("strides", [1, 1])), tuple(a.get("dilations", [1, 1]))
    window = ((KH - 1) * dil[0] + 1, (KW - 1) * dil[1] + 1)
    opts = {"kernel_size": [KH, KW], "strides": list(strides), "dilation": list(dil),
            "padding": window_padding(ctx, pos, node, a, window, strides), "use_bias": bias is not None}  # fmt: skip
    hwio = convert.oihw_to_hwio(W)
    weights = {"bias": np.asarray(bias)} if bias is not None else {}
    if groups == C and groups > 1 and Ig == 1:  # one input channel per group: Keras' DepthwiseConv2D
        ctx.emit("depthwise_conv2d", node, {**opts, "depth_multiplier": O // C},
                 {"kernel": convert.grouped_to_depthwise(hwio, C), **weights})  # fmt: skip
    else:
        ctx.emit("conv2d", node, {**opts, "filters": int(O), "groups": groups}, {"kernel": hwio, **weights})
    ctx.set(Value(node.output[0], NCHW))


__all__ = ["conv", "spatial", "window_padding"]
