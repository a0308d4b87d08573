"""The ONNX port's crop2d, slice and channel_shuffle (issue 24): Slice on the value's own axes (H and W of an NCHW
image, the channels of an NCHW / NCW map on axis 1), and the shuffle as ONNX's shufflenet writes it on NCHW: Reshape to
(B, groups, C / groups, H, W), Transpose [0, 2, 1, 3, 4], Reshape back to (B, C, H, W)."""

from __future__ import annotations

from typing import Any

from .builder import EMITTERS, NCHW, TBF, CANON, _Graph, _perm


def _slice(g: _Graph, canon_axes: list[int], starts: list[int], stops: list[int], rank: int) -> None:
    if g.layout == TBF:
        g.to(CANON, rank)
    perm = list(_perm(g.layout, rank)) if g.layout != CANON else list(range(rank))
    axes = [perm.index(a) for a in canon_axes]
    g.apply("Slice", g.const("starts", starts), g.const("ends", stops), g.const("axes", axes))


@EMITTERS.register("crop2d")
def crop2d(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    (t, b), (l, r) = opts["cropping"]
    _slice(g, [1, 2], [t, l], [shape[1] - b, shape[2] - r], 4)


@EMITTERS.register("slice")
def slice_(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    _slice(g, [opts["axis"] % len(shape)], [opts["start"]], [opts["stop"]], len(shape))


@EMITTERS.register("channel_shuffle")
def channel_shuffle(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    grp, c, rank = opts["groups"], shape[-1], len(shape)
    if rank >= 3:
        g.to(NCHW, rank)
        spatial = list(shape[1:-1])
        g.apply("Reshape", g.const("grouped", [-1, grp, c // grp, *spatial]))
        g.apply("Transpose", perm=[0, 2, 1, *range(3, rank + 1)])
        g.apply("Reshape", g.const("shape", [-1, c, *spatial]))
        return
    g.apply("Reshape", g.const("grouped", [-1, grp, c // grp]))
    g.apply("Transpose", perm=[0, 2, 1])
    g.apply("Reshape", g.const("shape", [-1, c]))


__all__ = ["channel_shuffle", "crop2d", "slice_"]
