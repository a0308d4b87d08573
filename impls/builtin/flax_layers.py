"""The Flax voice's layers, shared by its forward (impls/builtin/flax_builtin.py) and its vector-Jacobian products
(impls/builtin/flax_grads.py): one jax.jit(layer.apply) per layer configuration (`_apply`, `_pool`), the GRU variant
flax.linen.GRUCell computes (`check_variant`), and the conversions of canonical weights and options to what the
layers take (`_gru_inputs` through convert.gru_to_flax, `_conv_config`, `_padding`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import convert, frameworks
from ..contract import spec
from ..contract.spec import GRUWeights

nn = frameworks.load("flax")  # flax.linen
jax = frameworks.load("jax")
jnp = jax.numpy

SUPPORTED_VARIANTS = ("reset_after",)  # GRUCell: n = tanh(x W_in + b_in + r * (h W_hn + b_hn)), one form only


def check_variant(variant: str) -> str:
    spec.check_variant(variant)
    if variant not in SUPPORTED_VARIANTS:
        raise ValueError(f"flax.linen.GRUCell does not compute the GRU variant {variant!r}; supported: "
                         f"{', '.join(SUPPORTED_VARIANTS)} (the 'jax' implementation from primitives computes every "
                         "variant)")  # fmt: skip
    return variant


def _tree(tree: Any, x: Any) -> Any:
    """A nested dict of NumPy arrays as jax arrays of x's dtype."""
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype=x.dtype), tree)


def _np_tree(tree: Any) -> Any:
    return jax.tree_util.tree_map(np.asarray, tree)


def _padding(padding: Any, pads: tuple[int, int, int, int]) -> Any:
    """Flax's padding: 'VALID', 'SAME' (lax's, TensorFlow's rule) or explicit ((top, bottom), (left, right))."""
    if isinstance(padding, str):
        return padding.upper()
    t, b, l, r = pads
    return ((t, b), (l, r))


# --------------------------------------------------------------------------- layers, one jitted apply per configuration


@functools.cache
def _apply(kind: str, *config: Any) -> Callable:
    """jit(layer.apply) for one layer configuration: (params, *inputs) -> output."""
    if kind == "gru":

        def gru_apply(params, x, h0):
            cell = nn.GRUCell(features=h0.shape[-1], param_dtype=x.dtype)
            carry, y = nn.RNN(cell, return_carry=True).apply({"params": {"cell": params}}, x, initial_carry=h0)
            return y, carry

        return jax.jit(gru_apply)
    if kind == "conv2d":
        O, KH, KW, stride, padding, dilation, groups = config
        layer = nn.Conv(O, (KH, KW), strides=stride, padding=padding, kernel_dilation=dilation, feature_group_count=groups)
        return jax.jit(lambda params, x: layer.apply({"params": params}, x))
    if kind == "dense":
        (n_out,) = config
        layer = nn.Dense(n_out)
        return jax.jit(lambda params, x: layer.apply({"params": params}, x))
    if kind == "seed_conv1d":
        C, K = config
        layer = nn.Conv(C, (K,), padding="VALID", feature_group_count=C)
        return jax.jit(lambda params, x: layer.apply({"params": params}, x))
    raise ValueError(f"unknown layer kind {kind!r}")


@functools.cache
def _pool(kind: str, *config: Any) -> Callable:
    if kind == "max":
        window, stride, padding = config
        return jax.jit(lambda x: nn.max_pool(x, window, stride, padding))
    window, stride, padding, count_include_pad = config
    return jax.jit(lambda x: nn.avg_pool(x, window, stride, padding, count_include_pad=count_include_pad))


def _gru_inputs(x: Any, weights: GRUWeights, h0: Any) -> tuple[Any, Any]:
    B, H = x.shape[0], int(weights.U.shape[0])
    params = _tree(convert.gru_to_flax(weights.map(np.asarray)), x)
    return params, (jnp.zeros((B, H), x.dtype) if h0 is None else jnp.asarray(h0, x.dtype))


def _conv_config(g: spec.ConvGeometry, padding: Any) -> tuple:
    return (g.O, g.KH, g.KW, g.stride, _padding(padding, g.pads), g.dilation, g.groups)


__all__ = ["SUPPORTED_VARIANTS", "_apply", "_conv_config", "_gru_inputs", "_np_tree", "_padding", "_pool", "_tree",
           "check_variant"]
