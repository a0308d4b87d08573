"""Shape ops and merges: Pad (zero_pad2d: zeros on an image's H and W), Flatten and a Reshape to (batch, -1)
(flatten), any other Reshape of a value in the canonical order (reshape), Transpose, Squeeze and Unsqueeze (bookkeeping
of the value's axes, no layer), Add (registered in elementwise.py) and Concat of computed tensors (add, concatenate).

A Flatten of an NCHW map flattens (c, h, w): the value carries its `rows` and the next Dense's rows are permuted to
the canonical (h, w, c) order. A Transpose only moves the value's axes; where a later node reads the value in the
graph's order (a MatMul, a LayerNormalization, a Conv) that node makes the permute layer (Context.reinterpret). Add and
Concat of computed tensors are add / concatenate layers (a residual connection, a join), Concat's axis translated to
the canonical one (axis 1 of an NCHW map is the channels, canonical -1).
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import numpy as np

from . import slicing
from .context import REGISTRY, Context, attrs
from .values import Value


@REGISTRY.register("Pad", kinds=("zero_pad2d",))
def pad(ctx: Context, pos: int, node: Any) -> None:
    a = attrs(node)
    mode = a.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    pads = a["pads"] if ctx.opset < 11 else ctx.const(pos, node, 1)
    value = a.get("value", 0.0) if ctx.opset < 11 else ctx.const(pos, node, 2, np.zeros(()))
    rank = len(ctx.value.axes)
    axes = ctx.const(pos, node, 3, np.arange(rank))
    if mode != "constant" or np.any(np.asarray(value) != 0):
        raise ctx.refuse(pos, node, f"pads in mode {mode!r} with value {np.asarray(value).tolist()}: zero padding only")
    per_axis = {int(ax) % rank: (int(pads[k]), int(pads[k + len(axes)])) for k, ax in enumerate(np.asarray(axes).ravel())}
    canon = {ctx.value.axes[k]: p for k, p in per_axis.items() if any(p)}
    if ctx.value.rank != 4 or set(canon) - {1, 2} or any(min(p) < 0 for p in canon.values()):
        raise ctx.refuse(pos, node, f"pads {np.asarray(pads).tolist()} on axes {np.asarray(axes).tolist()}: "
                         "zeros on an image's H and W only")  # fmt: skip
    ctx.emit("zero_pad2d", node, {"padding": [list(canon.get(1, (0, 0))), list(canon.get(2, (0, 0)))]})
    ctx.set(replace(ctx.value, name=node.output[0]))


def _flatten_value(ctx: Context, pos: int, node: Any) -> None:
    v = ctx.value
    real = [ax for ax in v.axes if ax is not None]
    if not real or real[0] != 0 or v.rows is not None:
        raise ctx.refuse(pos, node, f"flattens a tensor whose first axis is not the batch (axes {v.axes})")
    if real == [0, 1]:  # (B, C) with size-1 axes (a global pool's): nothing to flatten, no layer
        return ctx.set(Value(node.output[0], (0, 1)))
    rows = None
    if real[1:] == [3, 1, 2]:  # NCHW flattens (c, h, w): the next Dense's rows are permuted back
        rows = tuple(ctx.shape(v.name)[k] for k, ax in enumerate(v.axes) if ax in (1, 2, 3))
        rows = (rows[1], rows[2], rows[0])
    elif real[1:] == [2, 1]:  # NCW flattens (c, l): the rows of a (1, L, C) map
        if node.output[0] == ctx.output:
            raise ctx.refuse(pos, node, "returns an NCW map flattened (c, l) with no Dense after it: the description "
                             "flattens (l, c), and a drop-in port of it would keep neither order")  # fmt: skip
        c, length = (ctx.shape(v.name)[k] for k, ax in enumerate(v.axes) if ax in (2, 1))
        rows = (1, length, c)
    elif real[1:] != sorted(real[1:]):
        raise ctx.refuse(pos, node, f"flattens axes in the order {real} of the canonical layout: (h, w, c) or (c, h, w) only")
    ctx.emit("flatten", node, {})
    ctx.set(Value(node.output[0], (0, 1), rows))


@REGISTRY.register("Flatten", kinds=("flatten",))
def flatten(ctx: Context, pos: int, node: Any) -> None:
    if attrs(node).get("axis", 1) != 1:
        raise ctx.refuse(pos, node, f"flattens from axis {attrs(node)['axis']}: Flatten(axis=1) only")
    _flatten_value(ctx, pos, node)


@REGISTRY.register("Reshape", kinds=("flatten", "reshape", "channel_shuffle"))
def reshape(ctx: Context, pos: int, node: Any) -> None:
    v, src, out = ctx.value, ctx.shape(ctx.value.name), ctx.shape(node.output[0])
    if len(out) == 2 and v.axes and v.axes[0] == 0 and out[0] == src[0]:  # (B, -1): a Flatten
        return _flatten_value(ctx, pos, node)
    axes = _singletons_only(v.axes, src, out)
    if axes is not None:
        return ctx.set(replace(v, name=node.output[0], axes=axes))
    if slicing.shuffle(ctx, pos, node):  # ShuffleNet's Reshape to 5-D, Transpose, Reshape back
        return None
    if v.axes != tuple(range(len(v.axes))) or v.rows is not None or out[0] != src[0]:
        raise ctx.refuse(pos, node, f"reshapes {src} to {out} from axes {v.axes} of the canonical layout: a reshape of a "
                         "channels-first map is not the description's row-major channels-last one; only a flatten to "
                         "(batch, -1), size-1 axes, or a reshape of a value in the canonical order keeping the batch")  # fmt: skip
    ctx.emit("reshape", node, {"target_shape": [int(n) for n in out[1:]]})
    ctx.set(Value(node.output[0], tuple(range(len(out)))))


_KNOWN_ORDERS = ((0, 3, 1, 2), (0, 1, 2, 3), (0, 1, 2), (1, 0, 2), (0, 1))


def _singletons_only(axes: tuple, src: tuple, out: tuple) -> tuple | None:
    """The axes after a reshape from `src` to `out` that only adds, removes or moves size-1 axes (tf2onnx writes
    NHWC -> NCHW of a one-channel image as a Reshape); None if it does more. A size-1 axis holds no order, so
    where it goes is free: the placement that gives a known layout is chosen."""
    big = [(ax, n) for ax, n in zip(axes, src, strict=True) if ax is not None and n != 1]
    ones = [ax for ax, n in zip(axes, src, strict=True) if ax is not None and n == 1]
    slots = [k for k, n in enumerate(out) if n == 1]
    if [n for n in out if n != 1] != [n for _, n in big] or len(slots) < len(ones):
        return None
    candidates = []
    for chosen in itertools.permutations(slots, len(ones)):
        new: list[int | None] = [None] * len(out)
        it = iter(big)
        for k, n in enumerate(out):
            if n != 1:
                new[k] = next(it)[0]
        for ax, k in zip(ones, chosen, strict=True):
            new[k] = ax
        candidates.append(tuple(new))
    known = [c for c in candidates if tuple(a for a in c if a is not None) in _KNOWN_ORDERS]
    return (known or candidates)[0]


@REGISTRY.register("Transpose", kinds=("permute",))  # its order becomes a permute layer where a later node reads it
def transpose(ctx: Context, pos: int, node: Any) -> None:
    v = ctx.value
    perm = attrs(node).get("perm", list(range(len(v.axes)))[::-1])
    if v.rows is not None:
        raise ctx.refuse(pos, node, "transposes a flattened vector")
    ctx.set(replace(v, name=node.output[0], axes=tuple(v.axes[p] for p in perm)))


def _axes_arg(ctx: Context, pos: int, node: Any) -> list[int] | None:
    if ctx.opset < 13:
        return attrs(node).get("axes")
    a = ctx.const(pos, node, 1)
    return None if a is None else [int(x) for x in np.asarray(a).ravel()]


@REGISTRY.register("Squeeze", kinds=())
def squeeze(ctx: Context, pos: int, node: Any) -> None:
    v, src = ctx.value, ctx.shape(ctx.value.name)
    axes = _axes_arg(ctx, pos, node)
    drop = {a % len(src) for a in axes} if axes is not None else {k for k, n in enumerate(src) if n == 1}
    if any(v.axes[k] is not None for k in drop):
        raise ctx.refuse(pos, node, f"squeezes axes {sorted(drop)} of {src}, which hold data axes, not inserted ones")
    ctx.set(replace(v, name=node.output[0], axes=tuple(ax for k, ax in enumerate(v.axes) if k not in drop)))


@REGISTRY.register("Unsqueeze", kinds=())
def unsqueeze(ctx: Context, pos: int, node: Any) -> None:
    v = ctx.value
    axes = _axes_arg(ctx, pos, node) or []
    rank = len(v.axes) + len(axes)
    new, it = [], iter(v.axes)
    for k in range(rank):
        new.append(None if k in {a % rank for a in axes} else next(it))
    ctx.set(replace(v, name=node.output[0], axes=tuple(new)))


def _merged(ctx: Context, pos: int, node: Any) -> list[Value]:
    if any(t in ctx.consts for t in node.input):
        raise ctx.refuse(pos, node, "merges a constant with a computed tensor: a bias only as a Dense's (MatMul + Add)")
    vals = [ctx.values[t] for t in node.input]
    same_shape = len({ctx.shape(v.name) for v in vals}) == 1
    if len({(v.axes, v.rows) for v in vals}) != 1 or (node.op_type == "Add" and not same_shape):
        raise ctx.refuse(pos, node, f"merges tensors held in different layouts ({[v.axes for v in vals]}) or shapes: "
                         "the description's add takes one shape, broadcasting is not a layer")  # fmt: skip
    return vals


def add(ctx: Context, pos: int, node: Any) -> None:
    """Two or more computed tensors of one shape and layout: an add layer (a residual connection). Registered by
    elementwise.py, which reads an Add of a constant as a rescale and hands the sum of computed tensors here."""
    vals = _merged(ctx, pos, node)
    ctx.emit("add", node, {}, inputs=tuple(ctx.owner[v.name] for v in vals))
    ctx.set(replace(vals[0], name=node.output[0]))


@REGISTRY.register("Concat", kinds=("concatenate",))
def concat(ctx: Context, pos: int, node: Any) -> None:
    """Concat of computed tensors in one layout: the axis translated to the canonical one (axis 1 of an NCHW map is
    the channels, canonical -1)."""
    vals = _merged(ctx, pos, node)
    v = vals[0]
    axis = int(attrs(node).get("axis", 0)) % len(v.axes)
    canon = v.axes[axis]
    if canon is None or canon == 0 or v.rows is not None:
        raise ctx.refuse(pos, node, f"concatenates axis {axis} of axes {v.axes}: a data axis past the batch of "
                         "unflattened values only")  # fmt: skip
    ctx.emit("concatenate", node, {"axis": -1 if canon == v.rank - 1 else int(canon)},
             inputs=tuple(ctx.owner[x.name] for x in vals))  # fmt: skip
    ctx.set(replace(v, name=node.output[0]))


__all__ = ["add", "concat", "flatten", "pad", "reshape", "squeeze", "transpose", "unsqueeze"]
