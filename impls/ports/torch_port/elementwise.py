"""The torch port's element-wise kinds and constants: multiply (`x = a * b`, torch's broadcasting on the layout both
are held in: a (B, C, 1, 1) gate times a (B, C, H, W) map), rescale (a line `x = x * scale + offset` of Python
numbers, or a `ChannelRescale` module given per-channel constants as float64 numbers in model.py: not buffers, which
weights.pt would round to the port's float32 and `.double()` could not restore: keras EfficientNetB0's Normalization
as a rescale made the torch port's float64 run 3.2e-08 off the source's float64, against Flax's 1.5e-15),
layer_scale (a `ChannelScale` module holding gamma as an nn.Parameter shaped to broadcast over torch's channel axis:
(C, 1, 1) on an NCHW map, as torchvision's ConvNeXt holds it) and stochastic_depth (nn.Identity, with a comment: it
is the identity at inference, and every training step here runs it off, as it runs Dropout).

The two module classes are written into model.py beside the other helpers (source.HELPERS), so model.py still
imports only torch.
"""

from __future__ import annotations

import numpy as np

from ...layouts import Layout
from ...model.description import Layer
from ...model.layers.elementwise import broadcast_shape
from .code import ANY_LAYOUT, EMITTERS, _Piece
from .source import HELPERS, shape_text, torch_shape

HELPERS["ChannelRescale"] = '''class ChannelRescale(nn.Module):
    """y = x * scale + offset: constants per channel, never trained, shaped to broadcast over the channel axis of x
    as forward holds it. Held in float64 as plain tensors, not buffers (.to(dtype) and .double() leave them), and
    cast to x's dtype in forward: a float32 port run .double() computes with the constants as written."""

    def __init__(self, shape, scale, offset):
        super().__init__()
        self.scale = torch.tensor(scale, dtype=torch.float64).reshape(shape)
        self.offset = torch.tensor(offset, dtype=torch.float64).reshape(shape)

    def forward(self, x):
        return x * self.scale.to(x) + self.offset.to(x)'''

HELPERS["ChannelScale"] = '''class ChannelScale(nn.Module):
    """y = x * gamma: a trainable weight per channel, shaped to broadcast over the channel axis of x as forward holds
    it ((C, 1, 1) on an NCHW map, as torchvision's ConvNeXt holds its layer scale)."""

    def __init__(self, shape):
        super().__init__()
        self.gamma = nn.Parameter(torch.empty(shape))

    def forward(self, x):
        return x * self.gamma'''

CHANNELS = ("nchw", "ncw", "plain")  # the layouts whose channel axis a per-channel constant can broadcast over


def channel_shape(kind: str, rank: int, c: int) -> tuple[int, ...]:
    """The shape a per-channel array takes to broadcast over torch's channel axis of a rank-`rank` tensor held
    `kind`: (C, 1, 1) on NCHW, (C, 1) on NCW, (C,) where the channels are last."""
    if kind in ("nchw", "ncw"):
        return (c, *(1,) * (rank - 2))
    return (c,)


@EMITTERS.register("multiply", merge=True, takes=CHANNELS)
def multiply(layer: Layer, opts: dict, shapes: tuple, exprs: list[str], layout: Layout) -> _Piece:
    """`x = a * b` of the sources held in one layout: torch broadcasts the size-1 axes as the description does."""
    out = torch_shape(broadcast_shape("multiply", list(shapes)), layout)
    return _Piece(None, [f"x = {' * '.join(exprs)}  # {layer.name}: {shape_text(out)}, broadcast"], {}, lambda a: {},
                  out, layout)  # fmt: skip


@EMITTERS.register("rescale", takes=CHANNELS)
def rescale(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    """Numbers in the line; per-channel constants given to a ChannelRescale module as float64 numbers."""
    out = torch_shape(shape, layout)
    scale, offset = opts["scale"], opts["offset"]
    if not isinstance(scale, list) and not isinstance(offset, list):
        return _Piece(None, [f"x = x * {scale!r} + {offset!r}  # {layer.name}: rescale, constants"], {}, lambda a: {},
                      out, layout)  # fmt: skip
    c = shape[-1]
    held = channel_shape(layout.kind, len(shape), c)
    scale, offset = ([float(k) for k in np.broadcast_to(np.asarray(v, np.float64), (c,))] for v in (scale, offset))
    init = f"ChannelRescale({held!r}, {scale!r}, {offset!r})  # x * scale + offset, constants per channel"
    return _Piece(init, [f"x = self.{{a}}(x)  # {shape_text(out)}"], {}, lambda a: {}, out, layout,
                  helpers=("ChannelRescale",))


@EMITTERS.register("layer_scale", takes=CHANNELS)
def layer_scale(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    """ChannelScale: gamma an nn.Parameter shaped over torch's channel axis (channel_shape)."""
    c = shape[-1]
    held = channel_shape(layout.kind, len(shape), c)
    state = {"gamma": np.asarray(layer.weights["gamma"]).reshape(held).copy()}

    def back(a):
        return {"gamma": np.asarray(a["gamma"]).reshape(-1)} if "gamma" in a else {}

    out = torch_shape(shape, layout)
    init = f"ChannelScale({held!r})  # x * gamma, a trainable weight per channel"
    return _Piece(init, [f"x = self.{{a}}(x)  # {shape_text(out)}"], state, back, out, layout, helpers=("ChannelScale",))


@EMITTERS.register("stochastic_depth", takes=ANY_LAYOUT)
def stochastic_depth(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    """nn.Identity: stochastic depth drops whole paths in training only (torchvision.ops.StochasticDepth, which a
    port importing only torch does not have); at inference, all the port computes, it is the identity."""
    line = (f"x = self.{{a}}(x)  # stochastic depth (rate {opts['rate']}, per {opts['mode']}): the identity at "
            "inference; training steps here run it off, as Dropout")  # fmt: skip
    return _Piece("nn.Identity()", [line], {}, lambda a: {}, torch_shape(shape, layout), layout)


__all__ = ["channel_shape", "layer_scale", "multiply", "rescale", "stochastic_depth"]
