"""The torch port's shape layers: zero_pad2d (nn.ZeroPad2d, in F.pad's order: convert.pads_to_torch), flatten
(nn.Flatten: a map's features in torch's (c, h, w) order, which the next dense layer's rows follow), reshape and
permute (lines of forward on the canonical layout), and the merges add and concatenate (their sources brought to
one layout first; concatenate's axis as torch's dim there).
"""

from __future__ import annotations

import numpy as np

from ... import convert
from ...layouts import PLAIN, Layout
from ...model.description import Layer
from ...model.layers import spec_of
from .code import ANY_LAYOUT, EMITTERS, _Piece
from .source import shape_text, torch_shape


@EMITTERS.register("zero_pad2d", takes=("nchw",))
def zero_pad2d(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    """nn.ZeroPad2d on NCHW, its pads (left, right, top, bottom)."""
    (t, b), (l, r) = opts["padding"]
    out = ("B", shape[3], shape[1] + t + b, shape[2] + l + r)
    init = f"nn.ZeroPad2d({shape_text(convert.pads_to_torch((t, b, l, r)))})  # (left, right, top, bottom)"
    return _Piece(init, [f"x = self.{{a}}(x)  # {shape_text(out)}"], {}, lambda a: {}, out, Layout("nchw"))


@EMITTERS.register("flatten", takes=ANY_LAYOUT)
def flatten(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    """nn.Flatten of the input as it is held: a map's features in torch's (c, h, w) / (c, l) order (Layout 'chw')."""
    n = int(np.prod(shape[1:]))
    if layout.kind == "nchw":
        h, w, c = shape[1:]
        return _Piece("nn.Flatten()", [f"x = self.{{a}}(x)  # (B, {n}) in torch's (c, h, w) order"], {}, lambda a: {},
                      ("B", n), Layout("chw", (h, w, c)))  # fmt: skip
    if layout.kind == "ncw":
        length, c = shape[1:]
        return _Piece("nn.Flatten()", [f"x = self.{{a}}(x)  # (B, {n}) in torch's (c, l) order"], {}, lambda a: {},
                      ("B", n), Layout("chw", (1, length, c)))  # fmt: skip
    return _Piece("nn.Flatten()", [f"x = self.{{a}}(x)  # (B, {n})"], {}, lambda a: {}, ("B", n), layout)


@EMITTERS.register("reshape")
def reshape(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    """x.reshape on the canonical layout, row-major as the description's."""
    out = tuple(spec_of("reshape").output_shape(opts, shape))
    dims = ", ".join(str(d) for d in out[1:])
    return _Piece(None, [f"x = x.reshape(x.shape[0], {dims})  # {layer.name}: reshape to (B, {dims}), row-major"], {},
                  lambda a: {}, ("B", *out[1:]), PLAIN)  # fmt: skip


@EMITTERS.register("permute")
def permute(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    """x.permute on the canonical layout, the batch left first."""
    dims = opts["dims"]
    out = ("B", *(shape[d] for d in dims))
    return _Piece(None, [f"x = x.permute(0, {', '.join(map(str, dims))})  # {layer.name}: {shape_text(out)}"], {},
                  lambda a: {}, out, PLAIN)  # fmt: skip


_TO_TORCH_DIM = {"nchw": {1: 2, 2: 3, 3: 1}, "ncw": {1: 2, 2: 1}}  # a canonical axis -> torch's dim


@EMITTERS.register("add", merge=True, takes=ANY_LAYOUT)
@EMITTERS.register("concatenate", merge=True, takes=("nchw", "ncw", "plain"))  # not torch's flattened (c, h, w) order
def merge(layer: Layer, opts: dict, shapes: tuple, exprs: list[str], layout: Layout) -> _Piece:
    """add / concatenate of `exprs` (already in one layout): `x = a + b`, `x = torch.cat((a, b), dim=d)`."""
    if layer.kind == "add":
        out = torch_shape(shapes[0], layout)
        line = f"x = {' + '.join(exprs)}  # {layer.name}: {shape_text(out)}"
    else:
        rank = len(shapes[0])
        axis = opts["axis"] % rank
        dim = _TO_TORCH_DIM.get(layout.kind, {}).get(axis, axis)
        canon = list(shapes[0])
        canon[axis] = sum(s[axis] for s in shapes)
        out = torch_shape(tuple(canon), layout)
        line = f"x = torch.cat(({', '.join(exprs)}), dim={dim})  # {layer.name}: {shape_text(out)}"
    return _Piece(None, [line], {}, lambda a: {}, out, layout)


__all__ = ["flatten", "merge", "permute", "reshape", "zero_pad2d"]
