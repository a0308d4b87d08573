"""Shape kinds of issue 24 that move or drop values, each on the canonical (channels-last) layout:

- crop2d: Keras' Cropping2D, [[top, bottom], [left, right]] rows and columns dropped from an NHWC map;
- slice: the values start .. stop (stop excluded) of one non-batch `axis` (-1: the channels), what each piece of
  torch.chunk / torch.split / tensor.split / a slice `x[:, a:b]` is; a channels_first source's channel axis (torch's
  dim 1 of a map) is axis -1 here, translated by its importer;
- channel_shuffle: ShuffleNet's shuffle of `groups` groups. Channel order is the source's own (a layout transpose
  never reorders channels): with C = groups * n, output channel k * groups + i is input channel i * n + k. torch and
  ONNX write it on NCHW as a view (B, groups, n, H, W), transpose(1, 2), a view back to (B, C, H, W); on NHWC it is
  a reshape to (..., groups, n), a swap of those two axes and a reshape back, which is how this kind computes.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ..errors import ModelError, ShapeError
from .base import LayerSpec, positive_int


def _pads(kind: str, name: str, value: Any) -> list[list[int]]:
    try:
        (t, b), (l, r) = value
        pads = [[int(t), int(b)], [int(l), int(r)]]
    except (TypeError, ValueError):
        raise ModelError(f"{kind}: {name} must be [[top, bottom], [left, right]], got {value!r}") from None
    if min(pads[0] + pads[1]) < 0:
        raise ModelError(f"{kind}: {name} must be >= 0, got {value!r}")
    return pads


class Crop2D(LayerSpec):
    KIND = "crop2d"
    DEFAULTS: ClassVar[dict] = {"cropping": [[0, 0], [0, 0]]}

    def validate(self, opts):
        return {"cropping": _pads(self.KIND, "cropping", opts["cropping"])}

    def output_shape(self, opts, in_shape):
        if len(in_shape) != 4:
            raise ShapeError(f"crop2d takes NHWC (B, H, W, C), got {tuple(in_shape)}")
        (t, b), (l, r) = opts["cropping"]
        H, W = in_shape[1] - t - b, in_shape[2] - l - r
        if H < 1 or W < 1:
            raise ShapeError(f"crop2d: cropping {opts['cropping']} leaves nothing of {tuple(in_shape)}")
        return (in_shape[0], H, W, in_shape[3])

    def forward(self, ops, x, opts, w):
        (t, b), (l, r) = opts["cropping"]
        return x[:, t : int(x.shape[1]) - b, l : int(x.shape[2]) - r, :]

    def vjp(self, x, opts, w, dy):
        (t, b), (l, r) = opts["cropping"]
        return np.pad(dy, ((0, 0), (t, b), (l, r), (0, 0))), {}


class Slice(LayerSpec):
    KIND = "slice"
    KEEPS_MASK = True
    REQUIRED = ("start", "stop")
    DEFAULTS: ClassVar[dict] = {"axis": -1}

    def validate(self, opts):
        a = opts["axis"]
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)) or a == 0:
            raise ModelError(f"slice: axis must be a non-batch axis (an int, not 0), got {a!r}")
        start, stop = opts["start"], opts["stop"]
        if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in (start, stop)) \
                or start < 0 or stop <= start:  # fmt: skip
            raise ModelError(f"slice: start and stop must be ints with 0 <= start < stop, got {start!r}, {stop!r}")
        return {"axis": int(a), "start": int(start), "stop": int(stop)}

    def _axis(self, opts, rank):
        a = opts["axis"] % rank
        if a == 0:
            raise ShapeError(f"slice: axis {opts['axis']} is the batch axis for rank {rank}")
        return a

    def output_shape(self, opts, in_shape):
        a = self._axis(opts, len(in_shape))
        if opts["stop"] > in_shape[a]:
            raise ShapeError(f"slice: stop {opts['stop']} is past axis {opts['axis']} of {tuple(in_shape)}")
        return (*in_shape[:a], opts["stop"] - opts["start"], *in_shape[a + 1 :])

    def forward(self, ops, x, opts, w):
        a = self._axis(opts, len(x.shape))
        return x[(slice(None),) * a + (slice(opts["start"], opts["stop"]),)]

    def vjp(self, x, opts, w, dy):
        a = self._axis(opts, x.ndim)
        pads = [(0, 0)] * x.ndim
        pads[a] = (opts["start"], x.shape[a] - opts["stop"])
        return np.pad(dy, pads), {}


class ChannelShuffle(LayerSpec):
    KIND = "channel_shuffle"
    OPS = ("reshape", "transpose")
    REQUIRED = ("groups",)

    def validate(self, opts):
        return {"groups": positive_int(self.KIND, "groups", opts["groups"])}

    def output_shape(self, opts, in_shape):
        if len(in_shape) < 2 or in_shape[-1] % opts["groups"]:
            raise ShapeError(f"channel_shuffle: {opts['groups']} groups must divide the channels (last axis) of "
                             f"{tuple(in_shape)}")  # fmt: skip
        return tuple(in_shape)

    def forward(self, ops, x, opts, w):
        shape, g = tuple(int(d) for d in x.shape), opts["groups"]
        y = ops.reshape(x, (*shape[:-1], g, shape[-1] // g))
        r = len(shape)
        return ops.reshape(ops.transpose(y, (*range(r - 1), r, r - 1)), shape)

    def vjp(self, x, opts, w, dy):
        g, C = opts["groups"], x.shape[-1]
        d = dy.reshape(*x.shape[:-1], C // g, g)  # output channel k * g + i
        return np.swapaxes(d, -1, -2).reshape(x.shape), {}


CROP = Crop2D()
SLICE = Slice()
SHUFFLE = ChannelShuffle()
