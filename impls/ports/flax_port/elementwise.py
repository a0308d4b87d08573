"""The Flax port's element-wise kinds and constants: multiply (`x = a * b`, jnp's broadcasting of size-1 axes, as
the description's), rescale (`x = x * scale + offset`, the constants in the code: numbers, or jnp arrays of one per
channel on the last axis), layer_scale (a small linen Module written into model.py, `ChannelScale`, whose param
"gamma" (C,) is the canonical weight) and stochastic_depth (left out, with a comment: the identity at inference;
training steps here run it off, as Dropout).
"""

from __future__ import annotations

import textwrap

from .emit import EMITTERS

CHANNEL_SCALE = '''class ChannelScale(nn.Module):
    """y = x * gamma: a trainable weight per channel (the last axis), the param "gamma" (C,)."""

    @nn.compact
    def __call__(self, x):
        return x * self.param("gamma", nn.initializers.ones, (x.shape[-1],), x.dtype)'''


@EMITTERS.register("multiply")
def multiply(name, opts, in_shape, ins):
    return [f"x = {' * '.join(ins)}  # broadcast"]


def constant(key: str, value: float | list[float]) -> list[str]:
    """`key = value` as code: a number, or a jnp array of the channels' values in x's dtype, wrapped over lines."""
    if not isinstance(value, list):
        return [f"{key} = {value!r}"]
    parts = textwrap.wrap(", ".join(repr(v) for v in value), 100, break_on_hyphens=False, break_long_words=False)
    lines = [f"{key} = jnp.asarray([{parts[0]}", *(f"    {p}" for p in parts[1:])]
    lines[-1] += "], x.dtype)"
    return lines


@EMITTERS.register("rescale")
def rescale(name, opts, in_shape):
    scale, offset = opts["scale"], opts["offset"]
    if not isinstance(scale, list) and not isinstance(offset, list):
        return [f"x = x * {scale!r} + {offset!r}  # rescale: constants"]
    return [*constant("scale", scale), *constant("offset", offset),
            "x = x * scale + offset  # rescale: constants per channel (the last axis)"]


@EMITTERS.register("layer_scale", helper=CHANNEL_SCALE)
def layer_scale(name, opts, in_shape):
    return [f'x = ChannelScale(name="{name}")(x)  # x * gamma, a trainable weight per channel']


@EMITTERS.register("stochastic_depth")
def stochastic_depth(name, opts, in_shape):
    return [(f"# stochastic depth (rate {opts['rate']}, per {opts['mode']}): the identity at inference, so the port "
             "leaves it out (training steps here run it off, as Dropout)")]


__all__ = ["CHANNEL_SCALE", "constant", "layer_scale", "multiply", "rescale", "stochastic_depth"]
