"""The torch importer's slices and shuffles (issue 24): x.chunk / torch.chunk / x.split / torch.split of any count
(the call itself is no layer; each piece taken by [i] is a slice), a tensor's [:, a:b] on one axis (slice) or on H
and W of an NCHW map (crop2d), torch.cat of a list holding one tensor (no layer: shape.py), and ShuffleNet's channel
shuffle: a view of an NCHW map to (B, groups, C / groups, H, W), transpose(1, 2) (a .contiguous() between is
allowed) and a view / reshape back to (B, C, H, W), as torchvision writes it (channel_shuffle; reshape.py's refusal of
a channels-first reshape asks `shuffle_step` first).

Axes: torch's dim d of a tensor held NCHW / NCW is the description's canonical axis (the channels, dim 1, are -1)."""

from __future__ import annotations

import operator
from typing import Any

from ...layouts import Layout
from .context import REGISTRY, Node, Step, _arg, _Ctx, _step, _tensor_users, torch

_TO_CANON = {"nchw": {1: -1, 2: 1, 3: 2}, "ncw": {1: -1, 2: 1}}
_PIECES = ("chunk", "split", torch.chunk, torch.split)


def canonical_axis(ctx: _Ctx, node: Node, dim: int, rank: int) -> int:
    dim = int(dim) % rank
    if dim == 0:
        raise ctx.refuse(node, "it slices dim 0, the batch; the description's slice keeps every sample")
    if ctx.layout.kind == "chw":
        raise ctx.refuse(node, "it slices a flattened channels-first map: its (c, h, w) features are not the "
                               "description's (h, w, c) ones")  # fmt: skip
    axis = _TO_CANON.get(ctx.layout.kind, {}).get(dim, dim)
    return -1 if axis == rank - 1 else axis


def _is_piece_call(n: Any) -> bool:
    return isinstance(n, Node) and n.op in ("call_method", "call_function") and n.target in _PIECES


@REGISTRY.register(*_PIECES, kinds=("slice",))
def _pieces(ctx: _Ctx, node: Node, f: Any) -> Step:
    """x.chunk(n, dim) / x.split(size or sizes, dim): no layer itself; each piece its [i] takes is a slice."""
    users = list(node.users)
    if not users or any(u.op != "call_function" or u.target is not operator.getitem or not isinstance(u.args[1], int)
                        for u in users):  # fmt: skip
        raise ctx.refuse(node, "its pieces are used otherwise than one by one ([0], [1], ... or a, b = ...)")
    return Step(None, [node], ctx.layout)


def _bounds(ctx: _Ctx, call: Node, index: int) -> tuple[int, int, int]:
    """(torch dim, start, stop) of piece `index` of a chunk / split call."""
    shape = ctx.shapes[call.args[0]]
    name = call.target if isinstance(call.target, str) else call.target.__name__
    dim = int(_arg(call, 2, "dim", 0)) % len(shape)
    n = shape[dim]
    if name == "chunk":
        chunks = int(_arg(call, 1, "chunks", 1))
        size = -(-n // chunks)
        sizes = [min(size, n - k) for k in range(0, n, size)]
    else:
        spec = _arg(call, 1, "split_size_or_sections", _arg(call, 1, "split_size", None))
        sizes = [min(int(spec), n - k) for k in range(0, n, int(spec))] if isinstance(spec, int) else [int(s) for s in spec]
    start = sum(sizes[: index % len(sizes)])
    return dim, start, start + sizes[index % len(sizes)]


@REGISTRY.register(operator.getitem, kinds=("slice", "crop2d", "take_step"))
def _getitem(ctx: _Ctx, node: Node, f: Any) -> Step:
    """A piece of a chunk / split (slice), x[:, a:b] on one axis (slice) or on H and W of an NCHW map (crop2d), or one
    step x[:, i] of a (B, T, F) sequence (take_step)."""
    src, index = node.args[0], node.args[1]
    if _is_piece_call(src):
        dim, start, stop = _bounds(ctx, src, int(index))
        rank = len(ctx.shapes[src.args[0]])
        step = _step(ctx, node, "slice", {"axis": canonical_axis(ctx, node, dim, rank), "start": start, "stop": stop},
                     nodes=[src, node])  # run alone (the source's isolated check): the chunk of x, then its piece
        step.input = src.args[0]
        return step
    shape = ctx.shapes[src]
    items = index if isinstance(index, tuple) else (index,)
    if len(items) == 2 and items[0] == slice(None) and isinstance(items[1], int) and not isinstance(items[1], bool):
        if len(shape) != 3 or ctx.layout.kind != "plain" or not -shape[1] <= items[1] < shape[1]:
            raise ctx.refuse(node, f"it takes position {items[1]} of {tuple(shape)} (held {ctx.layout.kind}): one "
                                   "step x[:, i] of a (B, T, F) sequence is a take_step")  # fmt: skip
        return _step(ctx, node, "take_step", {"index": items[1]})  # a ViT's class token out: x[:, 0]
    if Ellipsis in items or not all(isinstance(s, slice) for s in items):
        raise ctx.refuse(node, f"it indexes {shape} by {index!r}; the description takes slices a:b of whole axes")
    cuts = {}
    for d, s in enumerate(items):
        if s.step not in (None, 1) or any(v is not None and not isinstance(v, int) for v in (s.start, s.stop)):
            raise ctx.refuse(node, f"it slices dim {d} by {s!r}: a step, or bounds that are not numbers")
        start, stop, _ = s.indices(shape[d])
        if (start, stop) != (0, shape[d]):
            cuts[d] = (start, stop)
    if not cuts:
        return Step(None, [node], ctx.layout)
    if ctx.layout.kind == "nchw" and set(cuts) == {2, 3}:
        (t, b), (l, r) = ((cuts[d][0], shape[d] - cuts[d][1]) for d in (2, 3))
        return _step(ctx, node, "crop2d", {"cropping": [[t, b], [l, r]]}, layout=Layout("nchw"))
    if len(cuts) != 1:
        raise ctx.refuse(node, f"it slices dims {sorted(cuts)} of {shape} at once: one axis a slice, or H and W of an "
                               "NCHW map a crop")  # fmt: skip
    (d, (start, stop)), = cuts.items()
    if stop <= start:
        raise ctx.refuse(node, f"it slices dim {d} of {shape} to nothing ({start}:{stop})")
    return _step(ctx, node, "slice", {"axis": canonical_axis(ctx, node, d, len(shape)), "start": start, "stop": stop})


def _only_user(node: Node) -> Node | None:
    users = _tensor_users(node)
    return users[0] if len(users) == 1 else None


def shuffle_step(ctx: _Ctx, node: Node) -> Step | None:
    """The channel shuffle starting at `node` (a view of an NCHW map (B, C, H, W) to (B, g, C / g, H, W)), or None."""
    before, after = ctx.shapes[node.args[0]], ctx.shapes[node]
    if ctx.layout.kind != "nchw" or len(after) != 5 or after[0] != before[0] or tuple(after[3:]) != tuple(before[2:]) \
            or after[1] * after[2] != before[1]:  # fmt: skip
        return None
    t = _only_user(node)
    if t is None or t.target not in ("transpose", torch.transpose) or \
            {int(_arg(t, 1, "dim0", 0)) % 5, int(_arg(t, 2, "dim1", 1)) % 5} != {1, 2}:  # fmt: skip
        return None
    nodes, last = [node, t], _only_user(t)
    if last is not None and last.target == "contiguous":
        nodes.append(last)
        last = _only_user(last)
    flat = last is not None and last.target in ("flatten", torch.flatten) and _arg(last, 1, "start_dim", 0) == 1 \
        and _arg(last, 2, "end_dim", -1) == 2  # fmt: skip
    if last is None or not (flat or last.target in ("view", "reshape", torch.reshape)) \
            or tuple(ctx.shapes[last]) != tuple(before):  # fmt: skip
        return None
    return _step(ctx, last, "channel_shuffle", {"groups": int(after[1])}, layout=Layout("nchw"), nodes=[*nodes, last])


__all__ = ["canonical_axis", "shuffle_step"]
