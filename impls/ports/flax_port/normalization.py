"""The Flax port's normalizations: batch_norm and layer_norm.

BatchNorm is nn.BatchNorm (use_running_average=not train): its params scale/bias (gamma/beta, present as scale/center
say) and its moving statistics the "batch_stats" collection {mean, var} (variables.npz keys
"batch_stats:LAYER/mean"); flax 0.12.8's momentum is the old value's share (the description's:
convert.batch_norm_momentum_to_flax is the identity) and it updates var with the biased batch variance, so
variance_update "unbiased" (torch) is forward-exact only (batch_norm_notes: a training step moves var in Flax's
convention). use_fast_variance=False (E[(x - mu)^2], not E[x^2] - mu^2). LayerNorm is nn.LayerNorm (use_bias/use_scale
= center/scale). lrn has no linen layer: the helper `lrn` written into model.py (jnp only): the window sum of squares
across the last axis by jax.lax.reduce_window with the window's zero padding (its initial value a concrete NumPy
zero, so that JAX knows it for a sum and differentiates it), x / (bias + alpha / size * sum) ** beta.
"""

from __future__ import annotations

from ... import convert
from ...model.description import Model
from ...model.layers import spec_of
from ...model.layers.lrn import window
from .emit import EMITTERS

LRN = '''def lrn(x, size, alpha, beta, bias, before, after):
    """Local response normalization across the last axis: the window of channel c is [c - before, c + after]."""
    s = jax.lax.reduce_window(x * x, np.zeros((), x.dtype), jax.lax.add, (1,) * (x.ndim - 1) + (size,), (1,) * x.ndim,
                              [(0, 0)] * (x.ndim - 1) + [(before, after)])
    return x / (bias + alpha / size * s) ** beta'''


@EMITTERS.register("batch_norm")
def batch_norm(name, opts, in_shape):
    m = convert.batch_norm_momentum_to_flax(opts["momentum"])
    return [(f"x = nn.BatchNorm(use_running_average=not train, momentum={m!r}, epsilon={opts['epsilon']!r}, "
             f"use_bias={opts['center']}, use_scale={opts['scale']},"),
            f'                 use_fast_variance=False, name="{name}")(x)  # the last (channel) axis']


@EMITTERS.register("layer_norm")
def layer_norm(name, opts, in_shape):
    return [(f"x = nn.LayerNorm(epsilon={opts['epsilon']!r}, use_bias={opts['center']}, use_scale={opts['scale']}, "
             f'use_fast_variance=False, name="{name}")(x)  # the last axis')]


@EMITTERS.register("lrn", helper=LRN)
def lrn(name, opts, in_shape):
    before, after = window(opts["size"], opts["extra"])
    return [f"x = lrn(x, {opts['size']}, {opts['alpha']!r}, {opts['beta']!r}, {opts['bias']!r}, {before}, {after})  "
            f"# {name}: local response normalization across the channels"]


def batch_norm_notes(model: Model) -> list[str]:
    """flax.linen.BatchNorm updates batch_stats' var with the biased batch variance (the one it normalises by): a
    description whose variance_update is torch's "unbiased" (n / (n - 1) times it) ports forward-exact (inference
    reads the moving statistics as they are), but a training step moves var otherwise. One note per such layer."""
    return [f"{la.label(i)}: variance_update 'unbiased' (torch's running_var) has no flax.linen form: nn.BatchNorm "
            "moves batch_stats' var by the biased batch variance; forward-exact, but a training step's moving_var "
            "differs from the source's by the factor n / (n - 1) on the batch variance's share"
            for i, la in enumerate(model.layers)
            if la.kind == "batch_norm" and spec_of(la.kind).options(la.options)["variance_update"] == "unbiased"]


__all__ = ["LRN", "batch_norm", "batch_norm_notes", "layer_norm", "lrn"]
