"""Flax's built-in layers as a voice: flax.linen.GRUCell driven over the sequence by flax.linen.RNN, nn.Conv
(feature_group_count, kernel_dilation, explicit padding), nn.max_pool, nn.avg_pool (count_include_pad), nn.Dense,
nn.relu, nn.softmax. Whole models (the seed models among them) are the Flax port's (impls/ports/flax_port/).

Canonical weights reach the layers through impls/convert.py (`gru_to_flax`: Flax's GRUCell keeps four biases, not
six, and computes reset_after only; its conv and dense layouts are the canonical HWIO and (in, out)). Arrays are
the JAX voice's (impls/primitives/jax_impl.py's asarray/to_numpy: boundary, not math). Every layer call is one jax.jit
computation per configuration (impls/builtin/flax_layers.py, which the gradients share); gradients are jax.vjp over
the layers, read back through the converters (impls/builtin/flax_grads.py, re-exported here).
"""

from __future__ import annotations

import functools
from typing import Any

from .. import frameworks
from ..contract import spec
from ..contract.spec import GRUWeights
from ..primitives.jax_impl import MODE, MODES, asarray, compile, synchronize, to_numpy
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
from .flax_layers import SUPPORTED_VARIANTS, _apply, _conv_config, _gru_inputs, _padding, _pool, check_variant

nn = frameworks.load("flax")  # flax.linen
jax = frameworks.load("jax")
jnp = jax.numpy

NAME = "flax"
FRAMEWORK = "flax"


def gru(x: Any, weights: GRUWeights, variant: str, h0: Any = None) -> tuple[Any, Any]:
    """nn.RNN(nn.GRUCell(H), return_carry=True): x (B, T, I) -> (y (B, T, H), h_T (B, H)). reset_after only."""
    check_variant(variant)
    spec.check_gru(x.shape, weights, None if h0 is None else h0.shape)
    params, h = _gru_inputs(x, weights, h0)
    return _apply("gru")(params, x, h)


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


__all__ = [
    "FRAMEWORK", "MODE", "MODES", "NAME", "SUPPORTED_VARIANTS", "asarray", "avg_pool2d",
    "avg_pool2d_vjp", "compile", "conv2d", "conv2d_vjp", "dense", "dense_vjp", "gru", "gru_vjp", "max_pool2d",
    "max_pool2d_vjp", "relu", "relu_vjp", "seed_conv1d", "seed_pool1d",
    "softmax", "softmax_cross_entropy", "softmax_cross_entropy_vjp", "synchronize", "to_numpy",
]  # fmt: skip
