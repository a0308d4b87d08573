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

from .context import REGISTRY, Context, attrs
from .values import CHANNELS_FIRST


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


__all__ = ["batch_norm", "layer_norm", "lrn"]
