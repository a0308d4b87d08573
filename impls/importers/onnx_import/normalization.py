"""Normalisation: BatchNormalization (batch_norm) and LayerNormalization (layer_norm).

BatchNormalization imports in inference form only (training_mode=1 refused), with ONNX's momentum (the description's
convention) and epsilon; an eval-mode torch.onnx.export folds BatchNorm into the Conv before it, so such a file has
none to import. LayerNormalization normalises the last axis only; where that is not the description's channels
(torch's LayerNorm over an NCW map's length) a permute layer first makes the graph's order canonical.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from .context import REGISTRY, Context, attrs, scope
from .values import CHANNELS_FIRST, Value


def _f32(v: float) -> float:
    """An ONNX float attribute (stored float32: 1e-3 reads 0.0010000000474974513) as the shortest decimal that is the
    same float32 (0.001): what the exporting framework was given, and what its ports write back."""
    return float(str(np.float32(v)))


@REGISTRY.register("BatchNormalization", kinds=("batch_norm", "permute"))
def batch_norm(ctx: Context, pos: int, node: Any) -> None:
    """Inference-form BatchNormalization on the channel axis (axis 1: NCHW, NCW, or (B, C)): scale, B, input_mean,
    input_var -> gamma, beta, moving_mean, moving_var; epsilon (1e-5) and momentum (0.9) as ONNX states them, its
    momentum being the description's (running = running * momentum + batch * (1 - momentum)). variance_update
    'biased': ONNX's training-mode formula updates with the variance it normalises by (a torch export was trained
    with the unbiased one: the file does not say so). training_mode=1 and the running-statistics outputs are refused."""
    a = attrs(node)
    if a.get("training_mode", 0):
        raise ctx.refuse(pos, node, "has training_mode=1 (normalises by the batch's statistics): inference form only")
    if any(o and ctx.used(o) for o in node.output[1:]):
        raise ctx.refuse(pos, node, "uses its running mean / variance outputs: training mode, not a layer's output")
    if not a.get("spatial", 1):
        raise ctx.refuse(pos, node, "has spatial=0 (statistics per position): per channel only")
    rank = len(ctx.value.axes)
    ctx.reinterpret(pos, node, CHANNELS_FIRST.get(rank, tuple(range(rank))),
                    "normalises axis 1, which holds no channel axis of the description")  # fmt: skip
    if ctx.value.rows is not None or rank not in (2, 3, 4):
        raise ctx.refuse(pos, node, f"normalises a rank-{rank} tensor (axes {ctx.value.axes}): (B, C), NCW or NCHW only")
    gamma, beta, mean, var = (np.asarray(ctx.const(pos, node, k)) for k in (1, 2, 3, 4))
    momentum = _f32(a.get("momentum", 0.9))
    ctx.emit("batch_norm", node, {"epsilon": _f32(a.get("epsilon", 1e-5)), "momentum": momentum,
                                  "variance_update": "biased"},
             {"gamma": gamma, "beta": beta, "moving_mean": mean, "moving_var": var})  # fmt: skip
    ctx.set(replace(ctx.value, name=node.output[0]))


@REGISTRY.register("LayerNormalization", kinds=("layer_norm", "permute"))
def layer_norm(ctx: Context, pos: int, node: Any) -> None:
    """LayerNormalization over the last axis only. Where that axis is not the description's channels (torch's
    LayerNorm on an NCW map normalises the length) a permute layer first makes the graph's order canonical."""
    a = attrs(node)
    rank = len(ctx.value.axes)
    axis = int(a.get("axis", -1)) % rank
    if axis != rank - 1:
        raise ctx.refuse(pos, node, f"normalises axes {list(range(axis, rank))} together: over the last axis only")
    if any(o and ctx.used(o) for o in node.output[1:]):
        raise ctx.refuse(pos, node, "uses its Mean / InvStdDev outputs: not a layer's output")
    v = ctx.value
    if v.axes[-1] != v.rank - 1:
        ctx.reinterpret(pos, node, tuple(range(rank)), "normalises a last axis that is not the channels")
    scale, bias = ctx.const(pos, node, 1), ctx.const(pos, node, 2)
    weights = {"gamma": np.asarray(scale).reshape(-1), **({"beta": np.asarray(bias).reshape(-1)} if bias is not None else {})}
    ctx.emit("layer_norm", node, {"epsilon": _f32(a.get("epsilon", 1e-5)), "center": bias is not None}, weights)
    ctx.set(replace(ctx.value, name=node.output[0]))


@REGISTRY.register("LRN", kinds=("lrn", "permute"))
def lrn(ctx: Context, pos: int, node: Any) -> None:
    """LRN(size, alpha=1e-4, beta=0.75, bias=1) across axis 1 (NCHW or NCW: the channels): square_sum over channels
    [c - floor((size - 1) / 2), c + ceil((size - 1) / 2)], y = x / (bias + alpha / size * square_sum) ** beta."""
    a = attrs(node)
    rank = len(ctx.value.axes)
    if rank not in (3, 4):
        raise ctx.refuse(pos, node, f"normalises a rank-{rank} tensor: across the channels of an NCW or NCHW map only")
    ctx.reinterpret(pos, node, CHANNELS_FIRST[rank], "normalises axis 1, which holds no channel axis of the description")
    if ctx.value.rows is not None:
        raise ctx.refuse(pos, node, "normalises a value whose rows are not a map's")
    if "size" not in a:
        raise ctx.refuse(pos, node, "has no size attribute (required by ONNX)")
    opts = {"size": int(a["size"]), "alpha": _f32(a.get("alpha", 1e-4)), "beta": _f32(a.get("beta", 0.75)),
            "bias": _f32(a.get("bias", 1.0)), "extra": "after"}  # fmt: skip
    ctx.emit("lrn", node, opts, {})
    ctx.set(replace(ctx.value, name=node.output[0]))


@REGISTRY.register("Softmax", kinds=("activation", "permute"))
def softmax(ctx: Context, pos: int, node: Any) -> None:
    """Softmax as ONNX's opset defines it: from opset 13 over the one axis `axis` (default -1); before it, over the
    input flattened to 2-D at `axis` (default 1), i.e. over every axis from `axis` on together (ONNX's squeezenet
    and inception end with opset 9's Softmax(axis=1) of an (N, C, 1, 1) map: over its channels). Size-1 axes change
    nothing. Over the one canonical last axis (the channels, the features): an activation softmax (fused into the
    conv / dense of the same module, as Keras' activation=). Over another single axis: permute it last, softmax,
    permute back. Over the batch, or several axes of size > 1 together: refused."""
    v = ctx.value
    shape = ctx.shape(node.input[0])
    rank = len(v.axes)
    a = int(attrs(node).get("axis", -1 if ctx.opset >= 13 else 1)) % rank
    over = [a] if ctx.opset >= 13 else list(range(a, rank))
    wide = [k for k in over if shape[k] != 1 and v.axes[k] is not None]
    canon = sorted(v.axes[k] for k in wide)
    if 0 in canon:
        raise ctx.refuse(pos, node, f"normalises over the batch axis (axes {over} of {tuple(shape)})")
    last = v.rank - 1
    if not canon:  # every axis normalised has size 1: any one of them (the channels where they are among them)
        canon = [last] if any(v.axes[k] == last for k in over) else canon
    if canon == [last]:
        _softmax_last(ctx, node)
    elif len(canon) == 1:  # the layers' outputs as the graph holds them: the tensors, their axes moved
        c, base = canon[0], scope(node) or "softmax"
        order = [d for d in range(1, v.rank) if d != c] + [c]
        moved = tuple(ax if ax in (None, 0) else order.index(ax) + 1 for ax in v.axes)
        ctx.emit("permute", node, {"dims": order}, name=f"{base}_to_last")
        ctx.ends[-1] = Value(v.name, moved)
        ctx.emit("activation", node, {"activation": "softmax"})
        ctx.ends[-1] = Value(node.output[0], moved)
        ctx.emit("permute", node, {"dims": [order.index(d) + 1 for d in range(1, v.rank)]}, name=f"{base}_back")
    else:
        raise ctx.refuse(pos, node, f"normalises axes {over} of {tuple(shape)} together, several of the value's axes: "
                                    "a softmax over one axis only")  # fmt: skip
    ctx.set(replace(ctx.value, name=node.output[0]))


def _softmax_last(ctx: Context, node: Any) -> None:
    """The activation softmax, fused into the conv / dense of the same module where it ends one."""
    last = ctx.layers[-1] if ctx.layers else None
    v = ctx.value
    alone = last is not None and ctx.current == last.name and not ctx.consumers(v.name) and v.name != ctx.output
    if (alone and last.kind in ("conv2d", "depthwise_conv2d", "dense", "conv1d") and ctx.scopes[-1]
            and ctx.scopes[-1] == scope(node) and last.options.get("activation", "linear") == "linear"):  # fmt: skip
        ctx.amend(activation="softmax")
    else:
        ctx.emit("activation", node, {"activation": "softmax"})


__all__ = ["batch_norm", "layer_norm", "lrn", "softmax"]
