"""Conv1D: NWC input (B, L, C) (Keras' channels_last; torch and ONNX take NCW, their ports transpose at the
boundary), kernel (K, C_in / groups, filters), strides, padding "valid", "same" (TensorFlow's: the odd pad after),
"causal" (all (K - 1) * dilation pads before, none after) or [left, right], dilation and groups, then `activation`.

It is the 2-D convolution of impls/model/layers/conv2d.py on a (B, 1, L, C) map with a (1, K) kernel, so every
voice's 1-D convolution is checked against the same reference geometry; the ports use their frameworks' own Conv1D."""

from __future__ import annotations

from typing import Any, ClassVar

from ...contract import formulas, spec
from ...primitives import numpy_impl as ref
from ..errors import ModelError, ShapeError
from .activation import apply as apply_activation
from .activation import vjp as activation_vjp
from .base import ACTIVATION_OPS, LayerSpec, flag, positive_int
from .dense import with_bias


def pads(opts, length: int) -> Any:
    """The 2-D padding conv2d takes for this layer: "valid", "same", or ((0, 0), (left, right))."""
    p = opts["padding"]
    if p == "causal":
        return ((0, 0), ((opts["kernel_size"] - 1) * opts["dilation"], 0))
    if isinstance(p, str):
        return p
    return ((0, 0), (p[0], p[1]))


def conv2d_kwargs(opts, length: int) -> dict:
    return {"stride": (1, opts["strides"]), "padding": pads(opts, length), "dilation": (1, opts["dilation"]),
            "groups": opts["groups"]}


class Conv1D(LayerSpec):
    KIND = "conv1d"
    OPS = ("reshape", "conv2d", *ACTIVATION_OPS)
    REQUIRED = ("filters", "kernel_size")
    DEFAULTS: ClassVar[dict] = {"strides": 1, "padding": "valid", "dilation": 1, "groups": 1, "activation": "linear",
                                "use_bias": True}

    def validate(self, opts):
        for k in ("filters", "kernel_size", "strides", "dilation", "groups"):
            v = opts[k]
            if isinstance(v, (list, tuple)) and len(v) == 1:
                v = v[0]
            opts[k] = positive_int(self.KIND, k, v)
        p = opts["padding"]
        if isinstance(p, str):
            if p not in ("valid", "same", "causal"):
                raise ModelError(f"conv1d: padding {p!r} is not 'valid', 'same', 'causal' or [left, right]")
        else:
            try:
                left, right = (int(v) for v in p)
            except (TypeError, ValueError):
                raise ModelError(f"conv1d: padding {p!r} is not 'valid', 'same', 'causal' or [left, right]") from None
            if min(left, right) < 0:
                raise ModelError(f"conv1d: explicit pads must be >= 0, got {p!r}")
            opts["padding"] = [left, right]
        opts["use_bias"] = flag(self.KIND, "use_bias", opts["use_bias"])
        return opts

    def _geometry(self, opts, in_shape) -> spec.ConvGeometry:
        if len(in_shape) != 3:
            raise ShapeError(f"conv1d takes NWC (B, L, C), got {in_shape}")
        B, L, C = in_shape
        if C % opts["groups"]:
            raise ShapeError(f"conv1d: groups={opts['groups']} does not divide the input channels {C} of {in_shape}")
        if opts["filters"] % opts["groups"]:
            raise ShapeError(f"conv1d: groups={opts['groups']} does not divide filters={opts['filters']}")
        kernel = (1, opts["kernel_size"], C // opts["groups"], opts["filters"])
        return spec.check_conv2d((B, 1, L, C), kernel, (opts["filters"],), **conv2d_kwargs(opts, L))

    def output_shape(self, opts, in_shape):
        g = self._geometry(opts, in_shape)
        return (g.B, g.OW, g.O)

    def weight_shapes(self, opts, in_shape):
        shapes = {"kernel": (opts["kernel_size"], in_shape[2] // opts["groups"], opts["filters"])}
        if opts["use_bias"]:
            shapes["bias"] = (opts["filters"],)
        return shapes

    def flops(self, opts, in_shape):
        g = self._geometry(opts, in_shape)
        return formulas.conv2d_flops(g.B, g.OH, g.OW, g.KH, g.KW, g.C, g.O, g.groups)

    def op_weights(self, opts, w):
        return with_bias(opts, w)

    def _conv(self, ops, x, opts, kernel, bias):
        B, L, C = (int(d) for d in x.shape)
        k = ops.reshape(kernel, (1, *(int(d) for d in kernel.shape)))
        y = ops.conv2d(ops.reshape(x, (B, 1, L, C)), k, bias, **conv2d_kwargs(opts, L))
        return ops.reshape(y, (B, int(y.shape[2]), int(y.shape[3])))

    def forward(self, ops, x, opts, w):
        return apply_activation(ops, opts["activation"], self._conv(ops, x, opts, w["kernel"], w["bias"]))

    def vjp(self, x, opts, w, dy):
        full = with_bias(opts, w)
        B, L, C = x.shape
        k4 = full["kernel"][None]
        pre = self._conv(ref, x, opts, full["kernel"], full["bias"])
        d = activation_vjp(opts["activation"], pre, dy)
        g = ref.conv2d_vjp(x.reshape(B, 1, L, C), k4, full["bias"], d.reshape(B, 1, *d.shape[1:]), **conv2d_kwargs(opts, L))
        grads = {"kernel": g["kernel"][0]}
        if opts["use_bias"]:
            grads["bias"] = g["bias"]
        return g["x"].reshape(x.shape), grads


SPEC = Conv1D()
