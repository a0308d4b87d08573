"""The ONNX port's convolutions: conv2d and depthwise_conv2d (a grouped Conv) on NCHW images, conv1d on NCW maps.

Each layer's weights go through impls/convert.py (hwio_to_oihw, depthwise_to_grouped through the layer's
op_weights, pads_to_onnx). conv1d is ONNX's Conv on NCW (kernel (F, C/groups, K); "same" and "causal" as explicit
pads). ONNX Runtime 1.31's CPU Conv kernel is float32 only (limits.py, op "conv2d"): a depthwise convolution is a
grouped Conv, a 1-D convolution the same Conv kernel (measured: ONNX Runtime 1.31 has no float64 Conv for 1-D inputs
either); all three refused in float64 with that reason.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import convert
from ...contract import spec
from ...model.description import Layer
from ...model.layers import conv1d as conv1d_layer
from ...model.layers import conv2d as conv2d_layer
from ...model.layers import spec_of
from .builder import EMITTERS, NCHW, _Graph, ort_kernel


@EMITTERS.register("depthwise_conv2d", check=ort_kernel("conv2d"))
@EMITTERS.register("conv2d", check=ort_kernel("conv2d"))
def conv2d(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    g.to(NCHW)
    w = spec_of(layer.kind).op_weights(opts, dict(layer.weights))  # depthwise: the grouped HWIO kernel; a zero bias if none
    kernel = np.asarray(w["kernel"])
    groups = shape[3] if layer.kind == "depthwise_conv2d" else opts["groups"]
    geo = spec.check_conv2d(shape, kernel.shape, (kernel.shape[3],), **conv2d_layer.geometry_kwargs({**opts, "groups": groups}))
    inputs = [g.weight("weight", convert.hwio_to_oihw(kernel))]
    if opts["use_bias"]:
        inputs.append(g.weight("bias", w["bias"]))
    g.apply("Conv", *inputs, kernel_shape=[geo.KH, geo.KW], strides=list(geo.stride), dilations=list(geo.dilation),
            group=int(groups), pads=convert.pads_to_onnx(geo.pads))  # 'same' as its explicit pads  # fmt: skip
    g.activation(opts["activation"], 4)


@EMITTERS.register("conv1d", check=ort_kernel("conv2d"))
def conv1d(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    """ONNX's Conv on an NCW map: kernel (K, C/groups, F) -> (F, C/groups, K); 'same' (TensorFlow's: the odd pad
    after), 'causal' ((K - 1) * dilation before) and [left, right] as explicit pads (conv1d_layer.pads)."""
    g.to(NCHW, 3)
    B, L, C = shape
    kernel = np.asarray(layer.weights["kernel"])
    geo = spec.check_conv2d((B, 1, L, C), (1, *kernel.shape), (kernel.shape[2],), **conv1d_layer.conv2d_kwargs(opts, L))
    _, _, left, right = geo.pads  # (top, bottom, left, right) of the (1, L) map
    inputs = [g.weight("weight", np.transpose(kernel, (2, 1, 0)))]
    if opts["use_bias"]:
        inputs.append(g.weight("bias", layer.weights["bias"]))
    g.apply("Conv", *inputs, kernel_shape=[int(kernel.shape[0])], strides=[opts["strides"]], dilations=[opts["dilation"]],
            group=int(opts["groups"]), pads=[int(left), int(right)])  # fmt: skip
    g.activation(opts["activation"], 3)


@EMITTERS.register("separable_conv2d", check=ort_kernel("conv2d"))
def separable_conv2d(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    """Two Conv nodes: the depthwise one (group C, no bias; its weight under "<layer>_depthwise") and the 1x1
    pointwise one with the bias and the activation."""
    dw = Layer("depthwise_conv2d", layer.name, {}, {"kernel": layer.weights["depthwise_kernel"]})
    scope = g.scope
    g.scope = f"{scope}_depthwise"
    conv2d(g, i, dw, {**opts, "use_bias": False, "activation": "linear"}, shape)
    g.scope = scope
    mid = spec_of("depthwise_conv2d").output_shape(spec_of("depthwise_conv2d").options(
        {k: opts[k] for k in ("kernel_size", "depth_multiplier", "strides", "padding", "dilation")}), shape)
    pw = Layer("conv2d", layer.name, {}, {"kernel": layer.weights["pointwise_kernel"],
                                          **({"bias": layer.weights["bias"]} if opts["use_bias"] else {})})  # fmt: skip
    conv2d(g, i, pw, {"filters": opts["filters"], "kernel_size": [1, 1], "strides": [1, 1], "padding": "valid",
                      "dilation": [1, 1], "groups": 1, "activation": opts["activation"], "use_bias": opts["use_bias"]},
           mid)  # fmt: skip


__all__ = ["conv1d", "conv2d", "separable_conv2d"]
