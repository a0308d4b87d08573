"""The Flax port's convolutions: conv2d, depthwise_conv2d and conv1d, each one nn.Conv.

Conv2D is nn.Conv (strides, padding incl. explicit pairs, kernel_dilation, feature_group_count; HWIO, the canonical
kernel), DepthwiseConv2D nn.Conv with feature_group_count = C on the grouped kernel (convert.depthwise_to_grouped).
Conv1D is nn.Conv on NWC with a (K,) kernel (Flax's own layout, (K, C / groups, filters)), "same" as "SAME"
(TensorFlow's), "causal" and explicit pads written as padding pairs, kernel_dilation, feature_group_count.
"""

from __future__ import annotations

from ...model.description import Model
from .emit import EMITTERS, act, declared, pad, pair


def conv_limits(model: Model, index: int, opts: dict, dtype: str) -> str | None:
    """The declared limits of conv2d (a depthwise one asks as conv2d), with its stride, padding and dilation."""
    return declared("conv2d", dtype, stride=opts["strides"], padding=opts["padding"], dilation=opts["dilation"])


@EMITTERS.register("conv2d", check=conv_limits)
def conv2d(name, opts, in_shape, groups=None, filters=None, note=""):
    groups = opts["groups"] if groups is None else groups
    filters = opts["filters"] if filters is None else filters
    first = (f"x = nn.Conv({filters}, {pair(opts['kernel_size'])}, strides={pair(opts['strides'])}, "
             f"padding={pad(opts['padding'])}, kernel_dilation={pair(opts['dilation'])},{note}")
    second = f'            feature_group_count={groups}, use_bias={opts["use_bias"]}, name="{name}")(x)'
    return [first, second, *act(opts)]


@EMITTERS.register("depthwise_conv2d", check=conv_limits)
def depthwise_conv2d(name, opts, in_shape):
    c = in_shape[3]
    return conv2d(name, opts, in_shape, groups=c, filters=c * opts["depth_multiplier"],
                  note=f"  # depthwise: groups = C = {c}, kernel (KH, KW, 1, C * M)")


@EMITTERS.register("conv1d")
def conv1d(name, opts, in_shape):
    p = opts["padding"]
    K, d = opts["kernel_size"], opts["dilation"]
    if p == "causal":
        padding, note = repr((((K - 1) * d, 0),)), f"  # causal: (K - 1) * dilation = {(K - 1) * d} before, none after"
    elif isinstance(p, str):
        padding, note = f'"{p.upper()}"', ("  # TensorFlow's SAME: the odd pad after" if p == "same" else "")
    else:
        padding, note = repr(((p[0], p[1]),)), "  # (left, right)"
    first = (f"x = nn.Conv({opts['filters']}, ({K},), strides=({opts['strides']},), padding={padding}, "
             f"kernel_dilation=({d},),")
    second = f'            feature_group_count={opts["groups"]}, use_bias={opts["use_bias"]}, name="{name}")(x)'
    return [f"# NWC, kernel (K, C / groups, filters){';' + note[3:] if note else ''}", first, second, *act(opts)]


SEPARABLE = '''class SeparableConv(nn.Module):
    """Keras' SeparableConv2D: "depthwise", nn.Conv with one group per input channel (the grouped kernel
    (KH, KW, 1, C * M)) and no bias, then "pointwise", the 1x1 nn.Conv with the bias."""

    features: int
    multiplier: int
    kernel_size: tuple
    strides: tuple
    padding: object
    dilation: tuple
    use_bias: bool

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        x = nn.Conv(c * self.multiplier, self.kernel_size, strides=self.strides, padding=self.padding,
                    kernel_dilation=self.dilation, feature_group_count=c, use_bias=False, name="depthwise")(x)
        return nn.Conv(self.features, (1, 1), use_bias=self.use_bias, name="pointwise")(x)'''


@EMITTERS.register("separable_conv2d", check=conv_limits, helper=SEPARABLE)
def separable_conv2d(name, opts, in_shape):
    return [(f"x = SeparableConv({opts['filters']}, {opts['depth_multiplier']}, {pair(opts['kernel_size'])}, "
             f"{pair(opts['strides'])}, {pad(opts['padding'])}, {pair(opts['dilation'])},"),
            f'                  {opts["use_bias"]}, name="{name}")(x)', *act(opts)]


__all__ = ["SEPARABLE", "conv1d", "conv2d", "conv_limits", "depthwise_conv2d", "separable_conv2d"]
