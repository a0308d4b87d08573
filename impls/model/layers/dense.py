"""Dense: y = activation(x @ kernel + bias) on the last axis; x (B, in), (B, T, in) or a map's channels (B, H, W, in)
(ConvNeXt's nn.Linear on a channels-last map, issue 24). kernel (in, units)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ...contract import formulas
from ...primitives import numpy_impl as ref
from ..errors import ShapeError
from .activation import apply as apply_activation
from .activation import vjp as activation_vjp
from .base import ACTIVATION_OPS, LayerSpec, flag, positive_int


class Dense(LayerSpec):
    KIND = "dense"
    OPS = ("dense", *ACTIVATION_OPS)
    KEEPS_MASK = True
    REQUIRED = ("units",)
    DEFAULTS: ClassVar[dict] = {"activation": "linear", "use_bias": True}

    def validate(self, opts):
        opts["units"] = positive_int(self.KIND, "units", opts["units"])
        opts["use_bias"] = flag(self.KIND, "use_bias", opts["use_bias"])
        return opts

    def output_shape(self, opts, in_shape):
        if len(in_shape) not in (2, 3, 4):
            raise ShapeError(f"dense takes (B, in), (B, T, in) or (B, H, W, in), got {in_shape}")
        return (*in_shape[:-1], opts["units"])

    def weight_shapes(self, opts, in_shape):
        shapes = {"kernel": (in_shape[-1], opts["units"])}
        if opts["use_bias"]:
            shapes["bias"] = (opts["units"],)
        return shapes

    def flops(self, opts, in_shape):
        return formulas.dense_flops(int(np.prod(in_shape[:-1])), in_shape[-1], opts["units"])

    def op_weights(self, opts, w):
        return with_bias(opts, w)

    def forward(self, ops, x, opts, w):
        return apply_activation(ops, opts["activation"], ops.dense(x, w["kernel"], w["bias"]))

    def vjp(self, x, opts, w, dy):
        bias = with_bias(opts, w)["bias"]
        pre = ref.dense(x, w["kernel"], bias)
        g = ref.dense_vjp(x, w["kernel"], bias, activation_vjp(opts["activation"], pre, dy))
        grads = {"kernel": g["kernel"]}
        if opts["use_bias"]:
            grads["bias"] = g["bias"]
        return g["x"], grads


def with_bias(opts, w):
    """The op contract always takes a bias: a layer without one (use_bias=False) computes with zeros."""
    if opts["use_bias"]:
        return w
    k = np.asarray(w["kernel"])
    return {**w, "bias": np.zeros(k.shape[-1], k.dtype)}


SPEC = Dense()
