"""SeparableConv2D (Keras; Xception): a depthwise convolution (each input channel with its own depth_multiplier M
filters, kernel (KH, KW, C, M), strides, padding, dilation; no bias), then a pointwise 1x1 convolution to `filters`
(kernel (1, 1, C * M, filters), Keras' own layout) with the bias, then `activation`. One kind, not two layers: Keras'
layer is one, its intermediate is no tensor a source exposes, and each port writes its framework's own form (Keras'
SeparableConv2D; two convolutions in torch, ONNX and Flax). Computes as conv2d with groups = C on the grouped
depthwise kernel (convert.depthwise_to_grouped), then conv2d 1x1."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ... import convert
from ...contract import formulas
from ...primitives import numpy_impl as ref
from .activation import apply as apply_activation
from .activation import vjp as activation_vjp
from .base import positive_int
from .conv2d import geometry_kwargs
from .depthwise_conv2d import DepthwiseConv2D

POINTWISE = {"stride": (1, 1), "padding": "valid", "dilation": (1, 1), "groups": 1}


class SeparableConv2D(DepthwiseConv2D):
    KIND = "separable_conv2d"
    REQUIRED = ("filters", "kernel_size")
    DEFAULTS: ClassVar[dict] = {"depth_multiplier": 1, "strides": [1, 1], "padding": "valid", "dilation": [1, 1],
                                "activation": "linear", "use_bias": True}  # fmt: skip

    def validate(self, opts):
        opts["filters"] = positive_int(self.KIND, "filters", opts["filters"])
        return super().validate(opts)

    def output_shape(self, opts, in_shape):
        g = self._geometry(opts, in_shape)  # the depthwise step's
        return (g.B, g.OH, g.OW, opts["filters"])

    def weight_shapes(self, opts, in_shape):
        kh, kw = opts["kernel_size"]
        c, m = in_shape[3], opts["depth_multiplier"]
        return {"depthwise_kernel": (kh, kw, c, m), "pointwise_kernel": (1, 1, c * m, opts["filters"]),
                **({"bias": (opts["filters"],)} if opts["use_bias"] else {})}  # fmt: skip

    def flops(self, opts, in_shape):
        g = self._geometry(opts, in_shape)
        return (formulas.conv2d_flops(g.B, g.OH, g.OW, g.KH, g.KW, g.C, g.O, g.groups)
                + formulas.conv2d_flops(g.B, g.OH, g.OW, 1, 1, g.O, opts["filters"], 1))  # fmt: skip

    def op_weights(self, opts, w):
        """The depthwise kernel grouped (KH, KW, 1, C * M), its zero bias, the pointwise kernel, the bias (or zeros)."""
        dw = np.asarray(w["depthwise_kernel"])
        cm = dw.shape[2] * dw.shape[3]
        pw = np.asarray(w["pointwise_kernel"])
        return {"depthwise_kernel": convert.depthwise_to_grouped(dw), "zero": np.zeros(cm, dw.dtype), "pointwise_kernel": pw,
                "bias": np.asarray(w["bias"]) if "bias" in w else np.zeros(pw.shape[3], pw.dtype)}  # fmt: skip

    def _steps(self, groups: int, opts) -> tuple[dict, dict]:
        return geometry_kwargs({**opts, "groups": groups}), POINTWISE

    def forward(self, ops, x, opts, w):
        groups = int(w["depthwise_kernel"].shape[3]) // opts["depth_multiplier"]
        dk, pk = self._steps(groups, opts)
        d = ops.conv2d(x, w["depthwise_kernel"], w["zero"], **dk)
        return apply_activation(ops, opts["activation"], ops.conv2d(d, w["pointwise_kernel"], w["bias"], **pk))

    def vjp(self, x, opts, w, dy):
        full = self.op_weights(opts, w)
        c = x.shape[3]
        dk, pk = self._steps(c, opts)
        d = ref.conv2d(x, full["depthwise_kernel"], full["zero"], **dk)
        pre = ref.conv2d(d, full["pointwise_kernel"], full["bias"], **pk)
        gp = ref.conv2d_vjp(d, full["pointwise_kernel"], full["bias"], activation_vjp(opts["activation"], pre, dy), **pk)
        gd = ref.conv2d_vjp(x, full["depthwise_kernel"], full["zero"], gp["x"], **dk)
        grads = {"depthwise_kernel": convert.grouped_to_depthwise(gd["kernel"], c), "pointwise_kernel": gp["kernel"]}
        if opts["use_bias"]:
            grads["bias"] = gp["bias"]
        return gd["x"], grads


SPEC = SeparableConv2D()

__all__ = ["SPEC"]
