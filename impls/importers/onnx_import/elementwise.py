"""Element-wise ops and constants (issue 24): Add, Sub, Mul, Div and Sum.

- of computed tensors: Add (shape.py's add: one shape) and Sum (n-ary: an add of every input) join tensors; Mul is
  a multiply, ONNX's multidirectional broadcasting of size-1 axes as the description's (a (B, C, 1, 1) gate times a
  (B, C, H, W) map). A value of lower canonical rank that the graph broadcasts against a map (a GlobalAveragePool's
  (B, C) held (B, C, 1, 1)) first gets a reshape layer giving it the map's rank with size-1 axes, (B, 1, 1, C).
  Sub and Div of computed tensors have no kind: the walker refuses them.
- of a computed tensor and a constant (an initializer, or a folded constant): Add, Sub, Div and a scalar Mul are a
  rescale (x * scale + offset, the constant one number or one value per channel: impls/importers/constants.py reads
  it against the value's channel axis, axis 1 of an NCHW value); a Div of a constant by the tensor is refused. A Mul
  by a constant of one value per channel is a layer_scale, its values the weight gamma: ONNX does not say which of
  its initializers train, and the description holds every weight an ONNX file holds alike (a Conv's kernel is an
  initializer too), so a per-channel factor is read as a weight (torch.onnx.export writes ConvNeXt's layer scale as
  Mul by its (C, 1, 1) parameter), a constant scalar factor and every offset and divisor as constants (Keras'
  Rescaling and Normalization). Its forward is the same either way; its gradient is reported as a weight's.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from .. import constants
from .context import REGISTRY, Context
from .shape import add as add_tensors
from .values import Value

_OPS = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div"}


def channel_axis(v: Value) -> int | None:
    """The axis of the graph's tensor that holds the description's channels (its canonical last axis); None for a
    flattened NCHW map (its features in (c, h, w) order)."""
    if v.rows is not None:
        return None
    return next((k for k, a in enumerate(v.axes) if a == v.rank - 1), None)


def _constant(ctx: Context, pos: int, node: Any) -> None:
    """A computed tensor and a constant: rescale, or layer_scale (a Mul by one value per channel)."""
    op = _OPS[node.op_type]
    const = [k for k, t in enumerate(node.input) if t in ctx.consts]
    if len(node.input) != 2 or len(const) != 1:
        raise ctx.refuse(pos, node, f"takes {list(node.input)}: one computed tensor and one constant only")
    v, k = ctx.value, np.asarray(ctx.consts[node.input[const[0]]])
    per = constants.per_channel(k, ctx.shape(v.name), channel_axis(v))
    if per is None:
        raise ctx.refuse(pos, node, f"its constant of shape {k.shape} varies along an axis of {ctx.shape(v.name)} "
                         f"(canonical axes {v.axes}) that is not the channels: one value, or one per channel, only")  # fmt: skip
    if op == "mul" and per.ndim == 1:
        ctx.emit("layer_scale", node, {}, {"gamma": np.asarray(per, k.dtype if k.dtype.kind == "f" else np.float32)})
    else:
        opts = constants.affine(op, per, reverse=const[0] == 0)
        if isinstance(opts, str):
            raise ctx.refuse(pos, node, opts)
        ctx.emit("rescale", node, opts)
    ctx.set(replace(v, name=node.output[0]))


@REGISTRY.register("Add", kinds=("add", "rescale"))
@REGISTRY.register("Sub", "Div", kinds=("rescale",))
def arithmetic(ctx: Context, pos: int, node: Any) -> None:
    """Add of computed tensors: add (shape.py); Add, Sub, Div of a tensor and a constant: rescale."""
    if any(t in ctx.consts for t in node.input):
        return _constant(ctx, pos, node)
    return add_tensors(ctx, pos, node)


def _lifted(ctx: Context, pos: int, node: Any, v: Value, target: Value) -> Value:
    """`v` as a value of `target`'s canonical rank, the graph broadcasting it against `target` axis by axis: the
    same tensor, with a reshape layer adding its size-1 axes where the description needs them ((B, C) held
    (B, C, 1, 1) against an NCHW map becomes (B, 1, 1, C)). `v` itself where it already is."""
    if v.axes == target.axes and v.rows == target.rows:
        return v
    src, dst = ctx.shape(v.name), ctx.shape(target.name)
    if v.rows is not None or target.rows is not None or len(src) != len(dst):
        raise ctx.refuse(pos, node, f"multiplies {src} by {dst} (canonical axes {v.axes}, {target.axes}): tensors of "
                         "one rank whose size-1 axes broadcast only")  # fmt: skip
    pairs = [(a, target.axes[k]) for k, a in enumerate(v.axes) if a is not None]
    if any(t is None for _, t in pairs) or [t for _, t in sorted(pairs)] != sorted(t for _, t in pairs) \
            or any(src[k] not in (1, dst[k]) for k in range(len(src))) or dict(pairs).get(0) != 0:  # fmt: skip
        raise ctx.refuse(pos, node, f"multiplies {src} (canonical axes {v.axes}) by {dst} (axes {target.axes}): "
                         "their axes do not line up in the description's order")  # fmt: skip
    if v.rank == target.rank:
        raise ctx.refuse(pos, node, f"multiplies tensors held in different layouts ({v.axes}, {target.axes})")
    canon = [1] * target.rank
    for k, a in enumerate(v.axes):
        if a is not None:
            canon[target.axes[k]] = src[k]
    owner, current = ctx.owner[v.name], ctx.current
    ctx.emit("reshape", node, {"target_shape": canon[1:]}, inputs=(owner,), name=f"{ctx.owner[v.name]}_expand")
    ctx.set(Value(v.name, target.axes))
    ctx.notes.append(f"node {pos} {node.name!r}: broadcasts {src} against {dst}: a reshape layer gives the description's "
                     f"{tuple(canon)} first")  # fmt: skip
    ctx.current = current
    return ctx.values[v.name]


@REGISTRY.register("Mul", kinds=("multiply", "rescale", "layer_scale", "reshape"))
def mul(ctx: Context, pos: int, node: Any) -> None:
    """Mul of computed tensors: multiply (broadcast); of a tensor and a constant: rescale or layer_scale."""
    if any(t in ctx.consts for t in node.input):
        return _constant(ctx, pos, node)
    vals = [ctx.values[t] for t in node.input]
    target = max(vals, key=lambda v: v.rank)
    vals = [_lifted(ctx, pos, node, v, target) for v in vals]
    if len({v.axes for v in vals}) != 1:
        raise ctx.refuse(pos, node, f"multiplies tensors held in different layouts ({[v.axes for v in vals]})")
    ctx.emit("multiply", node, {}, inputs=tuple(ctx.owner[v.name] for v in vals))
    ctx.set(replace(target, name=node.output[0]))


@REGISTRY.register("Sum", kinds=("add",))
def total(ctx: Context, pos: int, node: Any) -> None:
    """Sum of computed tensors of one shape and layout: an add of them all; of one tensor, no layer."""
    if any(t in ctx.consts for t in node.input):
        raise ctx.refuse(pos, node, "sums a constant with computed tensors: a Sum of computed tensors only")
    vals = [ctx.values[t] for t in node.input]
    if len(vals) == 1:
        return ctx.set(replace(vals[0], name=node.output[0]))
    if len({(v.axes, v.rows, ctx.shape(v.name)) for v in vals}) != 1:
        raise ctx.refuse(pos, node, f"sums tensors of different shapes or layouts ({[ctx.shape(v.name) for v in vals]}): "
                         "the description's add takes one shape")  # fmt: skip
    ctx.emit("add", node, {}, inputs=tuple(ctx.owner[v.name] for v in vals))
    ctx.set(replace(vals[0], name=node.output[0]))


REGISTRY.absent("stochastic_depth", "ONNX has no stochastic-depth op: an exported model computes its inference, where "
                "stochastic depth is the identity and leaves no node (torch.onnx.export writes none)")

__all__ = ["arithmetic", "channel_axis", "mul", "total"]
