"""Activations and the identities: Relu, Tanh, Sigmoid, Softmax (the last, feature axis only) as an activation layer,
or fused into the conv / dense layer of the same module (Keras' Dense(activation=...)); Dropout (the identity at
inference, its rate kept); Identity (bookkeeping, no layer).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from .context import REGISTRY, Context, attrs, scope

_ACTIVATIONS = {"Relu": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid", "Softmax": "softmax"}


@REGISTRY.register(*(op for op in _ACTIVATIONS if op != "Softmax"), kinds=("activation",))  # Softmax: normalization.py
def activation(ctx: Context, pos: int, node: Any) -> None:
    v, act = ctx.value, _ACTIVATIONS[node.op_type]
    if act == "softmax":
        axis = attrs(node).get("axis", -1 if ctx.opset >= 13 else 1) % len(v.axes)
        last_only = ctx.opset >= 13 or axis == len(v.axes) - 1  # before opset 13 Softmax flattens from `axis`
        if v.axes[axis] != v.rank - 1 or not last_only:
            raise ctx.refuse(pos, node, f"normalises axis {axis} of axes {v.axes}: softmax over the last (feature) axis only")
    last = ctx.layers[-1] if ctx.layers else None
    alone = last is not None and ctx.current == last.name and not ctx.consumers(v.name) and v.name != ctx.output
    if (alone and last.kind in ("conv2d", "depthwise_conv2d", "dense", "conv1d") and ctx.scopes[-1]
            and ctx.scopes[-1] == scope(node) and last.options.get("activation", "linear") == "linear"):  # fmt: skip
        ctx.amend(activation=act)  # the same module's activation: Keras' Dense(activation=...)
    else:
        ctx.emit("activation", node, {"activation": act})
    ctx.set(replace(v, name=node.output[0]))


@REGISTRY.register("Dropout", kinds=("dropout",))
def dropout(ctx: Context, pos: int, node: Any) -> None:
    if len(node.output) > 1 and node.output[1] and ctx.used(node.output[1]):
        raise ctx.refuse(pos, node, "uses its mask output")
    ratio = attrs(node).get("ratio", 0.5) if ctx.opset < 12 else float(np.asarray(ctx.const(pos, node, 1, 0.5)))
    ctx.emit("dropout", node, {"rate": float(ratio)})
    ctx.set(replace(ctx.value, name=node.output[0]))


@REGISTRY.register("Identity", kinds=())
def identity(ctx: Context, pos: int, node: Any) -> None:
    ctx.set(replace(ctx.value, name=node.output[0]))


__all__ = ["activation", "dropout", "identity"]
