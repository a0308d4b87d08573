"""DepthwiseConv2D: each input channel c convolved with its own depth_multiplier M filters. The canonical kernel is
Keras' (KH, KW, C, M); output channel c * M + m is channel c's m-th filter. It computes as conv2d with groups = C on
the grouped HWIO kernel (KH, KW, 1, C * M) (convert.depthwise_to_grouped): a fact the converters own."""

from __future__ import annotations

from typing import ClassVar

from ... import convert
from ...contract import formulas
from ...primitives import numpy_impl as ref
from .activation import apply as apply_activation
from .activation import vjp as activation_vjp
from .base import positive_int
from .conv2d import Conv2D, geometry_kwargs
from .dense import with_bias


class DepthwiseConv2D(Conv2D):
    KIND = "depthwise_conv2d"
    REQUIRED = ("kernel_size",)
    DEFAULTS: ClassVar[dict] = {"depth_multiplier": 1, "strides": [1, 1], "padding": "valid", "dilation": [1, 1],
                "activation": "linear", "use_bias": True}

    def validate(self, opts):
        opts["depth_multiplier"] = positive_int(self.KIND, "depth_multiplier", opts["depth_multiplier"])
        return self.validate_window(opts)

    def _filters(self, opts, in_shape):
        return in_shape[3] * opts["depth_multiplier"]

    def _conv_opts(self, opts, in_shape):
        return {**opts, "groups": in_shape[3]}

    def _geometry(self, opts, in_shape):
        return super()._geometry({**opts, "groups": in_shape[3] if len(in_shape) == 4 else 1}, in_shape)

    def weight_shapes(self, opts, in_shape):
        kh, kw = opts["kernel_size"]
        c, m = in_shape[3], opts["depth_multiplier"]
        shapes = {"kernel": (kh, kw, c, m)}
        if opts["use_bias"]:
            shapes["bias"] = (c * m,)
        return shapes

    def flops(self, opts, in_shape):
        g = self._geometry(opts, in_shape)
        return formulas.conv2d_flops(g.B, g.OH, g.OW, g.KH, g.KW, g.C, g.O, g.groups)

    def op_weights(self, opts, w):
        return with_bias(opts, {**w, "kernel": convert.depthwise_to_grouped(w["kernel"])})  # no bias: C * M zeros

    def forward(self, ops, x, opts, w):
        groups = int(w["kernel"].shape[3]) // opts["depth_multiplier"]
        conv = ops.conv2d(x, w["kernel"], w["bias"], **geometry_kwargs({**opts, "groups": groups}))
        return apply_activation(ops, opts["activation"], conv)

    def vjp(self, x, opts, w, dy):
        c = x.shape[3]
        full = self.op_weights(opts, w)
        kernel = full["kernel"]
        kw = geometry_kwargs({**opts, "groups": c})
        pre = ref.conv2d(x, kernel, full["bias"], **kw)
        g = ref.conv2d_vjp(x, kernel, full["bias"], activation_vjp(opts["activation"], pre, dy), **kw)
        grads = {"kernel": convert.grouped_to_depthwise(g["kernel"], c)}
        if opts["use_bias"]:
            grads["bias"] = g["bias"]
        return g["x"], grads


SPEC = DepthwiseConv2D()
