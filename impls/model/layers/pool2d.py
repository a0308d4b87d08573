"""MaxPool2D and AvgPool2D on NHWC: pool_size, strides (default: the pool size), padding (valid, same or explicit);
average pooling counts padded cells only when count_include_pad is true (Keras' 'same' does not count them)."""

from __future__ import annotations

from typing import ClassVar

from ...contract import spec
from ...primitives import numpy_impl as ref
from ..errors import ShapeError
from .base import LayerSpec, flag, int_pair, padding_option, spec_padding


def pool_kwargs(opts) -> dict:
    return {"pool": tuple(opts["pool_size"]), "stride": tuple(opts["strides"]), "padding": spec_padding(opts["padding"])}


class MaxPool2D(LayerSpec):
    KIND = "max_pool2d"
    OPS = ("max_pool2d",)
    DEFAULTS: ClassVar[dict] = {"pool_size": [2, 2], "strides": None, "padding": "valid"}

    def validate(self, opts):
        opts["pool_size"] = int_pair(self.KIND, "pool_size", opts["pool_size"])
        opts["strides"] = opts["pool_size"] if opts["strides"] is None else int_pair(self.KIND, "strides", opts["strides"])
        opts["padding"] = padding_option(self.KIND, opts["padding"])
        return opts

    def output_shape(self, opts, in_shape):
        if len(in_shape) != 4:
            raise ShapeError(f"{self.KIND} takes NHWC (B, H, W, C), got {in_shape}")
        g = spec.check_pool2d(in_shape, **pool_kwargs(opts), op=self.KIND)
        return (g.B, g.OH, g.OW, g.C)

    def forward(self, ops, x, opts, w):
        return ops.max_pool2d(x, **pool_kwargs(opts))

    def vjp(self, x, opts, w, dy):
        return ref.max_pool2d_vjp(x, dy, **pool_kwargs(opts))["x"], {}


class AvgPool2D(MaxPool2D):
    KIND = "avg_pool2d"
    OPS = ("avg_pool2d",)
    DEFAULTS: ClassVar[dict] = {**MaxPool2D.DEFAULTS, "count_include_pad": False}

    def validate(self, opts):
        opts = super().validate(opts)
        opts["count_include_pad"] = flag(self.KIND, "count_include_pad", opts["count_include_pad"])
        return opts

    def forward(self, ops, x, opts, w):
        return ops.avg_pool2d(x, **pool_kwargs(opts), count_include_pad=opts["count_include_pad"])

    def vjp(self, x, opts, w, dy):
        return ref.avg_pool2d_vjp(x, dy, **pool_kwargs(opts), count_include_pad=opts["count_include_pad"])["x"], {}


MAX = MaxPool2D()
AVG = AvgPool2D()
