"""The ONNX importer's Slice (issue 24; registered in recurrent.py, which reads a sequence's last step first) and ShuffleNet's channel shuffle. A Slice of one axis is a slice on its
canonical axis (axis 1 of an NCHW map, the channels, is -1); of H and W of an image a crop2d. The shuffle is a
Reshape of an NCHW map (B, C, H, W) to (B, g, C / g, H, W), a Transpose [0, 2, 1, 3, 4] and a Reshape back to (B, C,
H, W), as ONNX's own shufflenet and torch.onnx write it (channel_shuffle; shape.py's Reshape asks `shuffle` first)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from .context import REGISTRY, Context, attrs
from .values import NCHW, Value


def slice_(ctx: Context, pos: int, node: Any) -> None:
    v, shape = ctx.value, ctx.shape(ctx.value.name)
    rank = len(shape)
    if ctx.opset < 10:
        a = attrs(node)
        starts, ends, axes, steps = a["starts"], a["ends"], a.get("axes", list(range(len(a["starts"])))), None
    else:
        starts, ends = ctx.const(pos, node, 1), ctx.const(pos, node, 2)
        axes, steps = ctx.const(pos, node, 3, np.arange(len(starts))), ctx.const(pos, node, 4)
    if steps is not None and np.any(np.asarray(steps) != 1):
        raise ctx.refuse(pos, node, f"slices with steps {np.asarray(steps).tolist()}: step 1 only")
    if v.rows is not None:
        raise ctx.refuse(pos, node, "slices a flattened channels-first map: its (c, h, w) features are not the "
                         "description's (h, w, c) ones")  # fmt: skip
    cuts = {}
    for ax, s, e in zip(np.asarray(axes).ravel(), np.asarray(starts).ravel(), np.asarray(ends).ravel(), strict=True):
        k = int(ax) % rank
        start, stop, _ = slice(int(s), int(min(e, np.iinfo(np.int64).max)), 1).indices(shape[k])
        if (start, stop) != (0, shape[k]):
            cuts[v.axes[k]] = (start, stop, shape[k])
    if None in cuts or 0 in cuts or any(stop <= start for start, stop, _ in cuts.values()):
        raise ctx.refuse(pos, node, f"slices axes {np.asarray(axes).tolist()} of axes {v.axes}: data axes past the batch, "
                         "to something")  # fmt: skip
    if not cuts:
        return ctx.set(replace(v, name=node.output[0]))
    if v.rank == 4 and set(cuts) == {1, 2}:
        (t, h0, H), (l, w0, W) = cuts[1], cuts[2]
        ctx.emit("crop2d", node, {"cropping": [[t, H - h0], [l, W - w0]]})
    elif len(cuts) == 1:
        (canon, (start, stop, _)), = cuts.items()
        ctx.emit("slice", node, {"axis": -1 if canon == v.rank - 1 else int(canon), "start": start, "stop": stop})
    else:
        raise ctx.refuse(pos, node, f"slices canonical axes {sorted(cuts)} at once: one axis, or H and W of an image")
    ctx.set(replace(v, name=node.output[0]))


@REGISTRY.register("Split", kinds=("slice",))
def split(ctx: Context, pos: int, node: Any) -> None:
    """Split (torch.onnx's chunk / split): one slice layer per output, each reading the split tensor."""
    v, shape = ctx.value, ctx.shape(ctx.value.name)
    a = attrs(node)
    k = int(a.get("axis", 0)) % len(shape)
    canon = v.axes[k]
    if v.rows is not None or canon in (None, 0):
        raise ctx.refuse(pos, node, f"splits axis {k} of axes {v.axes}: a data axis past the batch of an unflattened value")
    sizes = a.get("split") if ctx.opset < 13 else ctx.const(pos, node, 1)
    n, outs = shape[k], [o for o in node.output]
    if sizes is None:
        size = -(-n // len(outs))
        sizes = [min(size, n - j * size) for j in range(len(outs))]
    sizes = [int(x) for x in np.asarray(sizes).ravel()]
    src, start = ctx.current, 0
    for out, size in zip(outs, sizes, strict=True):
        if out and ctx.used(out):
            ctx.emit("slice", node, {"axis": -1 if canon == v.rank - 1 else int(canon), "start": start,
                                     "stop": start + size}, inputs=(src,), name=f"{node.name or 'split'}_{len(ctx.layers)}")  # fmt: skip
            ctx.set(replace(v, name=out))
        start += size


def shuffle(ctx: Context, pos: int, node: Any) -> bool:
    """A channel shuffle starting at this Reshape: emitted (the Transpose and the second Reshape taken) and True;
    False where the nodes are not the shuffle."""
    v, src, out = ctx.value, ctx.shape(ctx.value.name), ctx.shape(node.output[0])
    if v.axes != NCHW or v.rows is not None or len(out) != 5 or out[0] != src[0] or out[3:] != src[2:] \
            or out[1] * out[2] != src[1]:  # fmt: skip
        return False
    t = ctx.next_only(node.output[0], "Transpose")
    if t is None or list(attrs(t).get("perm", [])) != [0, 2, 1, 3, 4]:
        return False
    back = ctx.next_only(t.output[0], "Reshape")
    if back is None or ctx.shape(back.output[0]) != src:
        return False
    ctx.emit("channel_shuffle", node, {"groups": int(out[1])})
    ctx.take(t), ctx.take(back)
    ctx.set(Value(back.output[0], NCHW))
    return True


__all__ = ["shuffle", "slice_", "split"]
