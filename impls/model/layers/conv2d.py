"""Conv2D: NHWC input, HWIO kernel (KH, KW, C_in / groups, filters), strides, padding (valid, same or explicit),
dilation and groups, then `activation`. The geometry's rules are impls/contract/conv_spec.py's."""

from __future__ import annotations

from typing import ClassVar

from ...contract import formulas, spec
from ...primitives import numpy_impl as ref
from ..errors import ShapeError
from .activation import apply as apply_activation
from .activation import vjp as activation_vjp
from .base import ACTIVATION_OPS, LayerSpec, flag, int_pair, padding_option, positive_int, spec_padding
from .dense import with_bias


def geometry_kwargs(opts) -> dict:
    """The op contract's keyword arguments for conv2d."""
    return {"stride": tuple(opts["strides"]), "padding": spec_padding(opts["padding"]),
            "dilation": tuple(opts["dilation"]), "groups": opts["groups"]}


class Conv2D(LayerSpec):
    KIND = "conv2d"
    OPS = ("conv2d", *ACTIVATION_OPS)
    REQUIRED = ("filters", "kernel_size")
    DEFAULTS: ClassVar[dict] = {"strides": [1, 1], "padding": "valid", "dilation": [1, 1], "groups": 1, "activation": "linear",
                "use_bias": True}

    def validate(self, opts):
        opts["filters"] = positive_int(self.KIND, "filters", opts["filters"])
        opts["groups"] = positive_int(self.KIND, "groups", opts["groups"])
        return self.validate_window(opts)

    def validate_window(self, opts):
        """The options every convolution kind shares: kernel_size, strides, dilation, padding, use_bias."""
        k = self.KIND
        opts["kernel_size"] = int_pair(k, "kernel_size", opts["kernel_size"])
        opts["strides"] = int_pair(k, "strides", opts["strides"])
        opts["dilation"] = int_pair(k, "dilation", opts["dilation"])
        opts["padding"] = padding_option(k, opts["padding"])
        opts["use_bias"] = flag(k, "use_bias", opts["use_bias"])
        return opts

    def _geometry(self, opts, in_shape) -> spec.ConvGeometry:
        if len(in_shape) != 4:
            raise ShapeError(f"{self.KIND} takes NHWC (B, H, W, C), got {in_shape}")
        kh, kw = opts["kernel_size"]
        c = in_shape[3]
        if c % opts["groups"]:
            raise ShapeError(f"{self.KIND}: groups={opts['groups']} does not divide the input channels {c} of {in_shape}")
        kernel = (kh, kw, c // opts["groups"], self._filters(opts, in_shape))
        return spec.check_conv2d(in_shape, kernel, (kernel[3],), **geometry_kwargs(self._conv_opts(opts, in_shape)))

    def _filters(self, opts, in_shape) -> int:
        return opts["filters"]

    def _conv_opts(self, opts, in_shape) -> dict:
        return opts

    def output_shape(self, opts, in_shape):
        g = self._geometry(opts, in_shape)
        return (g.B, g.OH, g.OW, g.O)

    def weight_shapes(self, opts, in_shape):
        kh, kw = opts["kernel_size"]
        shapes = {"kernel": (kh, kw, in_shape[3] // opts["groups"], opts["filters"])}
        if opts["use_bias"]:
            shapes["bias"] = (opts["filters"],)
        return shapes

    def flops(self, opts, in_shape):
        g = self._geometry(opts, in_shape)
        return formulas.conv2d_flops(g.B, g.OH, g.OW, g.KH, g.KW, g.C, g.O, g.groups)

    def op_weights(self, opts, w):
        return with_bias(opts, w)

    def forward(self, ops, x, opts, w):
        return apply_activation(ops, opts["activation"], ops.conv2d(x, w["kernel"], w["bias"], **geometry_kwargs(opts)))

    def vjp(self, x, opts, w, dy):
        full = with_bias(opts, w)
        pre = ref.conv2d(x, full["kernel"], full["bias"], **geometry_kwargs(opts))
        g = ref.conv2d_vjp(x, full["kernel"], full["bias"], activation_vjp(opts["activation"], pre, dy), **geometry_kwargs(opts))
        grads = {"kernel": g["kernel"]}
        if opts["use_bias"]:
            grads["bias"] = g["bias"]
        return g["x"], grads


SPEC = Conv2D()
