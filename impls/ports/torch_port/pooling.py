"""The torch port's pools: max_pool2d and avg_pool2d as nn.MaxPool2d / nn.AvgPool2d on NCHW, and the global pools
as nn.Adaptive{Avg,Max}Pool{2d,1d}(1) on a map, a mean / amax over the steps of a sequence.

torch's pools pad only symmetrically, at most half the window: other pads are an F.pad before the pool, -inf for a
max pool (it never wins); an average pool that does not count its pads divides the zero-padded window sum by each
window's share of cells inside the image.
"""

from __future__ import annotations

from ...contract import spec
from ...layouts import PLAIN, Layout
from ...model.description import Layer
from ...model.layers import pool2d as pool2d_layer
from .code import EMITTERS, _Piece
from .source import pad_call, pad_reason, pair_text, shape_text


@EMITTERS.register("max_pool2d", takes=("nchw",))
@EMITTERS.register("avg_pool2d", takes=("nchw",))
def pool2d(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    """nn.MaxPool2d / nn.AvgPool2d on NCHW (ceil_mode=True where the pads are torch's own); pads it cannot hold by
    F.pad before it (a ceil_mode pool then as `lowered` writes it in floor pools)."""
    avg = layer.kind == "avg_pool2d"
    if opts["ceil_mode"]:
        native = _native_ceil(opts)
        if native is not None:
            out = ("B", *shape_of(layer, opts, shape))
            return _Piece(native, [f"x = self.{{a}}(x)  # {shape_text(out)}; ceil_mode: the last window may overhang"],
                          {}, lambda a: {}, out, Layout("nchw"))  # fmt: skip
    pre, opts = pool2d_layer.lowered(opts, shape)
    pre_line = []
    if pre is not None:  # the explicit pads the ceil_mode average counts, as zeros; its overhang not counted
        pre_line = [f"x = {pad_call(pre, 'x')}  # the pads the ceil_mode average counts"]
        t, b, l, r = pre
        shape = (shape[0], shape[1] + t + b, shape[2] + l + r, shape[3])
    g = spec.check_pool2d(shape, **pool2d_layer.pool_kwargs(opts), op=layer.kind)
    t, b, l, r = g.pads
    own_pad = t == b and l == r and 2 * t <= g.pool[0] and 2 * l <= g.pool[1]  # torch's pools: pad <= window / 2
    args = [pair_text(g.pool), f"stride={pair_text(g.stride)}"]
    if own_pad and (t or l):
        args.append(f"padding={pair_text((t, l))}")
    if avg and (own_pad and (t or l)):
        args.append(f"count_include_pad={opts['count_include_pad']}")
    out = ("B", g.C, g.OH, g.OW)
    init = f"nn.{'AvgPool2d' if avg else 'MaxPool2d'}({', '.join(args)})"
    if own_pad:
        return _Piece(init, [*pre_line, f"x = self.{{a}}(x)  # {shape_text(out)}"], {}, lambda a: {}, out,
                      Layout("nchw"), bool(pre_line))  # fmt: skip
    why = pad_reason(opts["padding"])
    if not avg:  # torch's MaxPool2d pads -inf but only symmetrically: the same -inf pads, explicitly
        padded = pad_call(g.pads, "x", 'float("-inf")')
        lines = [f"x = self.{{a}}({padded})  # {shape_text(out)}; {why}, -inf never wins"]
    elif opts["count_include_pad"]:
        lines = [f"x = self.{{a}}({pad_call(g.pads, 'x')})  # {shape_text(out)}; {why}, the zeros counted in the mean"]
    else:  # the mean over the cells inside the image: the zero-padded window sum over the share of real cells
        lines = [(f"inside = self.{{a}}({pad_call(g.pads, 'torch.ones_like(x[:1, :1])')})  # each window's share of "
                  "cells inside the image"),
                 f"x = self.{{a}}({pad_call(g.pads, 'x')}) / inside  # {shape_text(out)}; {why}, pads not counted"]  # fmt: skip
    return _Piece(init, [*pre_line, *lines], {}, lambda a: {}, out, Layout("nchw"), True)


def shape_of(layer: Layer, opts: dict, shape: tuple) -> tuple:
    """The pool's output (C, OH, OW) as torch holds it."""
    _, oh, ow, c = pool2d_layer.MAX.output_shape(opts, (1, *shape[1:]))
    return (c, oh, ow)


def _native_ceil(opts: dict) -> str | None:
    """nn.MaxPool2d / nn.AvgPool2d(..., ceil_mode=True) where its symmetric pads (at most half the window) are the
    layer's: torch's own rule is the description's. None otherwise."""
    (t, b), (l, r) = [[0, 0], [0, 0]] if opts["padding"] == "valid" else opts["padding"]
    k = opts["pool_size"]
    if t != b or l != r or 2 * t > k[0] or 2 * l > k[1]:
        return None
    args = [pair_text(k), f"stride={pair_text(opts['strides'])}", *([f"padding={pair_text((t, l))}"] if t or l else []),
            "ceil_mode=True"]
    if "count_include_pad" in opts:
        args.append(f"count_include_pad={opts['count_include_pad']}")
        return f"nn.AvgPool2d({', '.join(args)})"
    return f"nn.MaxPool2d({', '.join(args)})"


@EMITTERS.register("adaptive_avg_pool2d", takes=("nchw",))
def adaptive_avg_pool2d(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    """nn.AdaptiveAvgPool2d((OH, OW)) on NCHW: torch's own windows are the description's."""
    out = ("B", shape[3], *opts["output_size"])
    return _Piece(f"nn.AdaptiveAvgPool2d({pair_text(opts['output_size'])})", [f"x = self.{{a}}(x)  # {shape_text(out)}"],
                  {}, lambda a: {}, out, Layout("nchw"))  # fmt: skip


def _global_takes(rank: int) -> tuple[str, ...]:
    """An image NCHW; a 3-D input NCW where a map is held so, else as it is."""
    return ("nchw",) if rank == 4 else ("ncw", "plain")


@EMITTERS.register("global_avg_pool", takes=_global_takes, reads_map=True, masked=True)
@EMITTERS.register("global_max_pool", takes=_global_takes, reads_map=True)
def global_pool(layer: Layer, opts: dict, shape: tuple, layout: Layout, masked: bool = False) -> _Piece:
    """The mean / maximum over every position of a map (NCHW, NCW), or over the steps of a (B, T, C) sequence; a
    masked mean a padding mask reaches: over each row's valid steps (t < lengths), as Keras' GlobalAveragePooling1D."""
    avg, c = layer.kind == "global_avg_pool", shape[-1]
    what = "mean" if avg else "maximum"
    if avg and masked and opts.get("masked") and layout.kind == "plain":
        keep = "keep = (torch.arange(x.shape[1], device=x.device)[None, :] < lengths.to(x.device)[:, None]).to(x.dtype)"
        mean = f"x = (x * keep[:, :, None]).sum(dim=1) / keep.sum(dim=1, keepdim=True)  # {layer.name}: (B, {c})"
        lines = [f"{keep}  # (B, T): 1 at the valid steps", f"{mean}, the mean over each row's valid steps"]
        return _Piece(None, lines, {}, lambda a: {}, ("B", c), PLAIN)
    if layout.kind in ("nchw", "ncw"):
        cls = f"Adaptive{'Avg' if avg else 'Max'}Pool{'2d' if layout.kind == 'nchw' else '1d'}(1)"
        return _Piece(f"nn.{cls}", [f"x = self.{{a}}(x).flatten(1)  # (B, {c}): the {what} over every position"], {},
                      lambda a: {}, ("B", c), PLAIN)  # fmt: skip
    line = f"x = x.{'mean' if avg else 'amax'}(dim=1)  # {layer.name}: (B, {c}), the {what} over the steps"
    return _Piece(None, [line], {}, lambda a: {}, ("B", c), PLAIN)


__all__ = ["adaptive_avg_pool2d", "global_pool", "pool2d"]
