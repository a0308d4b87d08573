"""The Keras importer's convolutions: Conv1D (valid, same, causal; strides, dilation, groups), Conv2D and
DepthwiseConv2D (valid, same; strides, dilation; Conv2D's groups), SeparableConv2D (separable_conv2d: its
depthwise_kernel, pointwise_kernel and bias), channels_last only. Keras' kernels are the canonical layouts as they are."""

from __future__ import annotations

from ... import frameworks
from .context import REGISTRY, Context, Converted, one, pair

L = frameworks.load("keras").layers


@REGISTRY.register(L.Conv2D, kinds=("conv2d",))
def _conv2d(c: Context) -> Converted:
    c.channels_last()
    cfg = c.config
    opts = {"filters": int(cfg["filters"]), "kernel_size": pair(cfg["kernel_size"]), "strides": pair(cfg["strides"]),
            "padding": c.padding(), "dilation": pair(cfg["dilation_rate"]), "groups": int(cfg.get("groups", 1)),
            "activation": c.activation(), "use_bias": bool(cfg["use_bias"])}  # fmt: skip
    return "conv2d", opts, c.kernel_and_bias()  # HWIO (KH, KW, C / groups, F): the canonical layout


@REGISTRY.register(L.DepthwiseConv2D, kinds=("depthwise_conv2d",))
def _depthwise(c: Context) -> Converted:
    c.channels_last()
    cfg = c.config
    opts = {"kernel_size": pair(cfg["kernel_size"]), "depth_multiplier": int(cfg["depth_multiplier"]),
            "strides": pair(cfg["strides"]), "padding": c.padding(), "dilation": pair(cfg["dilation_rate"]),
            "activation": c.activation(), "use_bias": bool(cfg["use_bias"])}  # fmt: skip
    return "depthwise_conv2d", opts, c.kernel_and_bias()  # (KH, KW, C, M): the canonical layout


@REGISTRY.register(L.SeparableConv2D, kinds=("separable_conv2d",))
def _separable(c: Context) -> Converted:
    """depth_multiplier, strides, padding and dilation are the depthwise step's; the bias and the activation the
    pointwise step's (Keras' SeparableConv2D has no depthwise bias)."""
    c.channels_last()
    cfg = c.config
    opts = {"filters": int(cfg["filters"]), "kernel_size": pair(cfg["kernel_size"]),
            "depth_multiplier": int(cfg["depth_multiplier"]), "strides": pair(cfg["strides"]), "padding": c.padding(),
            "dilation": pair(cfg["dilation_rate"]), "activation": c.activation(), "use_bias": bool(cfg["use_bias"])}  # fmt: skip
    w = {"depthwise_kernel": c.weight("depthwise_kernel"), "pointwise_kernel": c.weight("pointwise_kernel")}
    if opts["use_bias"]:
        w["bias"] = c.weight("bias")
    return "separable_conv2d", opts, w


@REGISTRY.register(L.Conv1D, kinds=("conv1d",))
def _conv1d(c: Context) -> Converted:
    c.channels_last()
    cfg = c.config
    pad = str(cfg["padding"]).lower()
    if pad not in ("valid", "same", "causal"):
        raise c.refuse(f"padding={pad!r} is not 'valid', 'same' or 'causal'")
    opts = {"filters": int(cfg["filters"]), "kernel_size": one(cfg["kernel_size"]), "strides": one(cfg["strides"]),
            "padding": pad, "dilation": one(cfg["dilation_rate"]), "groups": int(cfg.get("groups", 1)),
            "activation": c.activation(), "use_bias": bool(cfg["use_bias"])}  # fmt: skip
    return "conv1d", opts, c.kernel_and_bias()  # (K, C / groups, F): the canonical layout
