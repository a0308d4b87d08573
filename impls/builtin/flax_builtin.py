"""Flax's built-in layers as a voice: flax.linen.GRUCell driven over the sequence by flax.linen.RNN, nn.Conv
(feature_group_count, kernel_dilation, explicit padding), nn.max_pool, nn.avg_pool (count_include_pad), nn.Dense,
nn.relu, nn.softmax. Whole models (the seed models among them) are the Flax port's (impls/ports/flax_port.py).

Canonical weights reach the layers through impls/convert.py (`gru_to_flax`: Flax's GRUCell keeps four biases, not
six, and computes reset_after only; its conv and dense layouts are the canonical HWIO and (in, out)). Arrays are
the JAX voice's (impls/primitives/jax_impl.py's asarray/to_numpy: boundary, not math). Every layer call is one jax.jit
computation per configuration; gradients are jax.vjp over the layers, read back through the converters.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import convert, frameworks
from ..contract import spec
from ..contract.spec import GRUWeights
from ..primitives.jax_impl import MODE, MODES, asarray, compile, synchronize, to_numpy

nn = frameworks.load("flax")  # flax.linen
jax = frameworks.load("jax")
jnp = jax.numpy

NAME = "flax"
FRAMEWORK = "flax"
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


def gru(x: Any, weights: GRUWeights, variant: str, h0: Any = None) -> tuple[Any, Any]:
    """nn.RNN(nn.GRUCell(H), return_carry=True): x (B, T, I) -> (y (B, T, H), h_T (B, H)). reset_after only."""
    check_variant(variant)
    spec.check_gru(x.shape, weights, None if h0 is None else h0.shape)
    params, h = _gru_inputs(x, weights, h0)
    return _apply("gru")(params, x, h)


def _conv_config(g: spec.ConvGeometry, padding: Any) -> tuple:
    return (g.O, g.KH, g.KW, g.stride, _padding(padding, g.pads), g.dilation, g.groups)


def conv2d(x: Any, kernel: Any, bias: Any, stride: Any = 1, padding: Any = "valid", dilation: Any = 1, groups: int = 1) -> Any:
    """nn.Conv(feature_group_count, kernel_dilation, padding): NHWC and HWIO are Flax's own layouts."""
    g = spec.check_conv2d(x.shape, kernel.shape, bias.shape, stride, padding, dilation, groups)
    params = {"kernel": jnp.asarray(kernel, x.dtype), "bias": jnp.asarray(bias, x.dtype)}
    return _apply("conv2d", *_conv_config(g, padding))(params, x)


def max_pool2d(x: Any, pool: Any = 2, stride: Any = None, padding: Any = "valid") -> Any:
    """nn.max_pool: lax.reduce_window from -inf, so padding never wins."""
    g = spec.check_pool2d(x.shape, pool, stride, padding)
    return _pool("max", g.pool, g.stride, _padding(padding, g.pads))(x)


def avg_pool2d(x: Any, pool: Any = 2, stride: Any = None, padding: Any = "valid", count_include_pad: bool = False) -> Any:
    """nn.avg_pool(count_include_pad=...): Flax's default counts the padded cells (True), the contract's does not."""
    flag = spec.check_count_include_pad(count_include_pad)
    g = spec.check_pool2d(x.shape, pool, stride, padding, op="avg_pool2d")
    y = _pool("avg", g.pool, g.stride, _padding(padding, g.pads), flag)(x)
    return y.astype(x.dtype)  # AVG_POOL_PROMOTES: Flax divides by float64 ones under x64; the sum is x's dtype


AVG_POOL_PROMOTES = ("flax.linen.avg_pool(count_include_pad=False) divides the window sums by a pool of "
                     "jnp.ones(shape) in JAX's default float dtype, float64 under jax_enable_x64: a float32 input comes "
                     "back float64 (the sums themselves are float32). The voice returns the input's dtype.")
"""Found while building this voice; verify/test_flax.py shows it on Flax itself."""


def dense(x: Any, kernel: Any, bias: Any) -> Any:
    """nn.Dense: x (..., in) -> (..., out), kernel (in, out) as canonical."""
    spec.check_dense(x.shape, kernel.shape, bias.shape)
    params = {"kernel": jnp.asarray(kernel, x.dtype), "bias": jnp.asarray(bias, x.dtype)}
    return _apply("dense", int(kernel.shape[1]))(params, x)


relu = jax.jit(nn.relu)


@functools.partial(jax.jit, static_argnames="axis")
def softmax(x: Any, axis: int = -1) -> Any:
    return nn.softmax(x, axis=axis)


def seed_conv1d(x: Any, w: Any, b: Any) -> Any:
    """The seed's per-channel 1-D correlation as nn.Conv(C, (K,), feature_group_count=C) on (B, L, C)."""
    _, _, C, K = spec.check_seed_conv1d(x.shape, w.shape, b.shape)
    params = {"kernel": jnp.asarray(w, x.dtype)[:, None, :], "bias": jnp.asarray(b, x.dtype)}  # (K, 1, C): WIO
    return _apply("seed_conv1d", C, K)(params, x)


def seed_pool1d(y: Any) -> Any:
    """The seed's x_ij = max(y_ij, y_i,j+1) as nn.max_pool(y, (2,), strides=(1,))."""
    spec.check_seed_pool1d(y.shape)
    return _pool("max", (2,), (1,), "VALID")(y)


# --------------------------------------------------------------------------- gradients: impls/builtin/flax_grads.py

from .flax_grads import (
    avg_pool2d_vjp,
    conv2d_vjp,
    dense_vjp,
    gru_vjp,
    max_pool2d_vjp,
    relu_vjp,
    softmax_cross_entropy,
    softmax_cross_entropy_vjp,
)

__all__ = [
    "FRAMEWORK", "MODE", "MODES", "NAME", "SUPPORTED_VARIANTS", "asarray", "avg_pool2d",
    "avg_pool2d_vjp", "compile", "conv2d", "conv2d_vjp", "dense", "dense_vjp", "gru", "gru_vjp", "max_pool2d",
    "max_pool2d_vjp", "relu", "relu_vjp", "seed_conv1d", "seed_pool1d",
    "softmax", "softmax_cross_entropy", "softmax_cross_entropy_vjp", "synchronize", "to_numpy",
]  # fmt: skip
