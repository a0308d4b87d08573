"""The ONNX port's element-wise kinds and constants: multiply (Mul of the inputs, each brought to the first one's
layout; ONNX's multidirectional broadcasting then lines the size-1 axes up as the description does), rescale (Mul by
the scale, Add of the offset: initializers, a number or one per channel shaped over the value's channel axis; a
factor of 1 or an offset of 0 writes no node), layer_scale (Mul by gamma, an initializer shaped over the channel
axis: (C, 1, 1) on an NCHW value, as torch.onnx.export writes ConvNeXt's) and stochastic_depth (no node: the identity
at inference, noted).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .builder import EMITTERS, _Graph, _perm


def channel_shape(layout: str, rank: int, c: int) -> tuple[int, ...]:
    """The shape a per-channel initializer takes to broadcast over the channel axis of a rank-`rank` value held in
    `layout`: (C, 1, 1) on NCHW, (C, 1) on NCW, (C,) where the channels are last (canonical, and time-major
    (T, B, F) sequences)."""
    axis = _perm(layout, rank).index(rank - 1)  # the physical axis holding the canonical channels
    return (c, *(1,) * (rank - 1 - axis))


def _channels(g: _Graph, name: str, value: Any, rank: int, c: int) -> str:
    """An initializer of `value` (a number, or C values) broadcasting over the value's channels."""
    a = np.asarray(value, np.float64)
    return g.weight(name, a if a.ndim == 0 else a.reshape(channel_shape(g.layout, rank, c)))


@EMITTERS.register("multiply")
def multiply(g: _Graph, i: int, layer: Any, opts: dict, shapes: tuple) -> None:
    """Mul of every input in the first input's layout (time-major sequences too: a size-1 axis broadcasts wherever
    it is, so long as every input holds it in the same place)."""
    rank = len(shapes[0])
    tensors, layout = [], None
    for n in g.model.sources(i):
        g.read(n)
        layout = g.layout if layout is None else layout
        g.to(layout, rank)
        tensors.append(g.value)
    y = tensors[0]
    for t in tensors[1:]:
        y = g.node("Mul", [y, t])[0]
    g.value, g.layout = y, layout


@EMITTERS.register("rescale")
def rescale(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    rank, c = len(shape), shape[-1]
    if not (not isinstance(opts["scale"], list) and opts["scale"] == 1.0):
        g.apply("Mul", _channels(g, "scale", opts["scale"], rank, c))
    if not (not isinstance(opts["offset"], list) and opts["offset"] == 0.0):
        g.apply("Add", _channels(g, "offset", opts["offset"], rank, c))
    if g.value == g.values[g.model.sources(i)[0]][0]:
        g.apply("Identity")  # scale 1, offset 0: still a value of its own


@EMITTERS.register("layer_scale")
def layer_scale(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    g.apply("Mul", _channels(g, "gamma", layer.weights["gamma"], len(shape), shape[-1]))


@EMITTERS.register("stochastic_depth")
def stochastic_depth(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    """The identity at inference: no node."""
    g.notes.append(f"{layer.name}: stochastic depth left out (the identity at inference)")


__all__ = ["channel_shape", "layer_scale", "multiply", "rescale", "stochastic_depth"]
