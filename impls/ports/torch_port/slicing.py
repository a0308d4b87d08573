"""The torch port's crop2d, slice and channel_shuffle (issue 24), lines of forward on the tensor as torch holds it:
crop2d `x[:, :, t:H - b, l:W - r]` on NCHW; slice `x[..., a:b]` on torch's dim of the canonical axis (the channels of
an NCHW / NCW map are dim 1); channel_shuffle as torchvision writes it on NCHW (a view to (B, groups, C / groups, H,
W), transpose(1, 2), back to (B, C, H, W)), and on a channels-last tensor the same on its last axis."""

from __future__ import annotations

from ...layouts import Layout
from ...model.description import Layer
from .code import EMITTERS, _Piece
from .source import shape_text, torch_shape

_TO_TORCH_DIM = {"nchw": {1: 2, 2: 3, 3: 1}, "ncw": {1: 2, 2: 1}}  # a canonical axis -> torch's dim


@EMITTERS.register("crop2d", takes=("nchw",))
def crop2d(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    (t, b), (l, r) = opts["cropping"]
    H, W = shape[1:3]
    out = ("B", shape[3], H - t - b, W - l - r)
    line = f"x = x[:, :, {t}:{H - b}, {l}:{W - r}]  # {layer.name}: cropped to {shape_text(out)}"
    return _Piece(None, [line], {}, lambda a: {}, out, layout)


@EMITTERS.register("slice", takes=("nchw", "ncw", "plain"))
def slice_(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    axis = opts["axis"] % len(shape)
    dim = _TO_TORCH_DIM.get(layout.kind, {}).get(axis, axis)
    canon = list(shape)
    canon[axis] = opts["stop"] - opts["start"]
    out = torch_shape(tuple(canon), layout)
    index = ", ".join([":"] * dim + [f"{opts['start']}:{opts['stop']}"])
    return _Piece(None, [f"x = x[{index}]  # {layer.name}: {shape_text(out)}"], {}, lambda a: {}, out, layout)


def _shuffle_takes(rank: int) -> tuple[str, ...]:
    return ("nchw",) if rank == 4 else ("plain",)


@EMITTERS.register("channel_shuffle", takes=_shuffle_takes)
def channel_shuffle(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    g, c = opts["groups"], shape[-1]
    out = torch_shape(tuple(shape), layout)
    if layout.kind == "nchw":
        h, w = shape[1:3]
        line = (f"x = x.view(x.shape[0], {g}, {c // g}, {h}, {w}).transpose(1, 2).reshape(x.shape[0], {c}, {h}, {w})"
                f"  # {layer.name}: channel shuffle of {g} groups")  # fmt: skip
    else:
        line = (f"x = x.reshape(*x.shape[:-1], {g}, {c // g}).transpose(-1, -2).reshape(x.shape)  # {layer.name}: "
                f"channel shuffle of {g} groups")  # fmt: skip
    return _Piece(None, [line], {}, lambda a: {}, out, layout)


__all__ = ["channel_shuffle", "crop2d", "slice_"]
