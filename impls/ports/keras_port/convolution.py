"""The Keras port's convolutions: conv2d (keras.layers.Conv2D with groups), depthwise_conv2d (DepthwiseConv2D) and
conv1d (Conv1D), separable_conv2d (SeparableConv2D), each behind a ZeroPadding2D / ZeroPadding1D named "<layer>_pad" where its pads are explicit (the
convolution itself then 'valid'). conv1d's valid / same / causal are Keras' own. Keras refuses strides > 1 together
with dilation_rate > 1 (impls/contract/limits.py declares it): such a layer is refused. A channels_first source holds
conv1d's 3-D input and output as (B, C, L) feature maps.
"""

from __future__ import annotations

from ...contract import limits
from .emitters import EMITTERS, KERNEL, VOICE, Site, Weights, keras, pads2d


def _conv2d_check(opts: dict, in_shape: tuple, masked: bool) -> str | None:
    return limits.refusal(VOICE, "conv2d", stride=tuple(opts["strides"]), dilation=tuple(opts["dilation"]))


def _conv1d_check(opts: dict, in_shape: tuple, masked: bool) -> str | None:
    return limits.refusal(VOICE, "conv2d", stride=(1, opts["strides"]), dilation=(1, opts["dilation"]))


def _conv2d_layers(main_of, opts: dict, at: Site) -> list:
    """ZeroPadding2D (explicit pads) then the convolution `main_of(**common)` makes."""
    explicit = not isinstance(opts["padding"], str)
    common = {"strides": tuple(opts["strides"]), "padding": "valid" if explicit else opts["padding"],
              "dilation_rate": tuple(opts["dilation"]), "activation": opts["activation"],
              "use_bias": opts["use_bias"], "dtype": at.dt, "name": at.name}  # fmt: skip
    main = main_of(**common)
    pre = [keras.layers.ZeroPadding2D(pads2d(opts["padding"]), dtype=at.dt, name=at.helper)] if explicit else []
    return [*pre, main]


@EMITTERS.register("conv2d", check=_conv2d_check, weights=KERNEL)
def conv2d(opts: dict, at: Site) -> list:
    return _conv2d_layers(lambda **common: keras.layers.Conv2D(opts["filters"], tuple(opts["kernel_size"]),
                                                               groups=opts["groups"], **common), opts, at)  # fmt: skip


@EMITTERS.register("depthwise_conv2d", check=_conv2d_check, weights=KERNEL)
def depthwise_conv2d(opts: dict, at: Site) -> list:
    return _conv2d_layers(lambda **common: keras.layers.DepthwiseConv2D(
        tuple(opts["kernel_size"]), depth_multiplier=opts["depth_multiplier"], **common), opts, at)  # fmt: skip


@EMITTERS.register("conv1d", check=_conv1d_check, weights=KERNEL, reads_map=True, makes_map=True)
def conv1d(opts: dict, at: Site) -> list:
    L = keras.layers
    explicit = not isinstance(opts["padding"], str)
    conv = L.Conv1D(opts["filters"], opts["kernel_size"], strides=opts["strides"],
                    padding="valid" if explicit else opts["padding"], dilation_rate=opts["dilation"],
                    groups=opts["groups"], activation=opts["activation"], use_bias=opts["use_bias"], dtype=at.dt,
                    name=at.name)  # fmt: skip
    return [*([L.ZeroPadding1D(tuple(opts["padding"]), dtype=at.dt, name=at.helper)] if explicit else []), conv]


@EMITTERS.register("separable_conv2d", check=_conv2d_check,
                   weights=Weights(lambda opts: ["depthwise_kernel", "pointwise_kernel", *(["bias"] if opts["use_bias"] else [])]))
def separable_conv2d(opts: dict, at: Site) -> list:
    """keras.layers.SeparableConv2D itself: its depthwise_kernel (KH, KW, C, M) and pointwise_kernel (1, 1, C * M, F)
    are the description's."""
    return _conv2d_layers(lambda **common: keras.layers.SeparableConv2D(
        opts["filters"], tuple(opts["kernel_size"]), depth_multiplier=opts["depth_multiplier"], **common), opts, at)  # fmt: skip


__all__ = ["conv1d", "conv2d", "depthwise_conv2d", "separable_conv2d"]
