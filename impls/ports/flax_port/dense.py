"""The Flax port's dense layer: nn.Dense (2-D, or the last axis of 3-D), its kernel (in, out) the canonical one."""

from __future__ import annotations

from .emit import EMITTERS, act


@EMITTERS.register("dense")
def dense(name, opts, in_shape):
    return [f'x = nn.Dense({opts["units"]}, use_bias={opts["use_bias"]}, name="{name}")(x)', *act(opts)]


__all__ = ["dense"]
