"""Flax's built-in layers as a voice: flax.linen.GRUCell driven over the sequence by flax.linen.RNN, nn.Conv
(feature_group_count, kernel_dilation, explicit padding), nn.max_pool, nn.avg_pool (count_include_pad), nn.Dense,
nn.relu, nn.softmax, and the seed models as linen Modules built from them.

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
from ..contract import models, spec
from ..contract.models import SEED_CNN_POOL, SEED_GRU_VARIANT, SeedCNNParams, SeedGRUParams
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


# --------------------------------------------------------------------------- the seed models (linen Modules)


class SeedGRU(nn.Module):
    """RNN(GRUCell(128)) -> RNN(GRUCell(64)), last state -> Dense(10) -> softmax; params as convert.seed_gru_to_flax
    (the cells, created here, own their parameters: {"gru1": cell, "gru2": cell, "dense": ...})."""

    units: tuple[int, int] = models.SEED_GRU_UNITS
    classes: int = models.SEED_CLASSES

    @nn.compact
    def __call__(self, x):
        y1 = nn.RNN(nn.GRUCell(self.units[0], param_dtype=x.dtype, name="gru1"))(x)  # (B, T, 128)
        h2, _ = nn.RNN(nn.GRUCell(self.units[1], param_dtype=x.dtype, name="gru2"), return_carry=True)(y1)
        return nn.softmax(nn.Dense(self.classes, name="dense")(h2))


class SeedCNN(nn.Module):
    """Conv(32, 3x3) -> relu -> max_pool 2 -> Conv(64, 3x3) -> relu -> max_pool 2 -> Flatten (NHWC, as Keras) ->
    Dense(128) -> relu -> Dense(10) -> softmax; params as convert.seed_cnn_to_flax (the canonical arrays)."""

    filters: tuple[int, int] = models.SEED_CNN_FILTERS
    dense_units: int = models.SEED_DENSE_UNITS
    classes: int = models.SEED_CLASSES

    @nn.compact
    def __call__(self, x):
        k, p = (models.SEED_CNN_KERNEL,) * 2, (SEED_CNN_POOL,) * 2
        a = nn.max_pool(nn.relu(nn.Conv(self.filters[0], k, padding="VALID", name="conv1")(x)), p, p)
        a = nn.max_pool(nn.relu(nn.Conv(self.filters[1], k, padding="VALID", name="conv2")(a)), p, p)
        a = nn.relu(nn.Dense(self.dense_units, name="dense1")(a.reshape(a.shape[0], -1)))
        return nn.softmax(nn.Dense(self.classes, name="dense2")(a))


def _model(params: Any, dtype: Any, device: Any, to_flax: Callable, module: Any) -> Callable:
    p = params.map(lambda a: np.asarray(to_numpy(a) if not isinstance(a, np.ndarray) else a))
    tree = jax.tree_util.tree_map(lambda a: asarray(a, "float64" if dtype is None else dtype, device), to_flax(p))
    apply = jax.jit(lambda t, x: module.apply({"params": t}, x))
    return lambda x: apply(_tree(tree, x), x)


def seed_module(params: SeedGRUParams | SeedCNNParams) -> Any:
    """The linen Module of the seed model `params` belong to, sized from them."""
    if isinstance(params, SeedGRUParams):
        return SeedGRU((int(params.gru1.U.shape[0]), int(params.gru2.U.shape[0])), int(params.dense.bias.shape[0]))
    filters = (int(params.conv1.kernel.shape[3]), int(params.conv2.kernel.shape[3]))
    return SeedCNN(filters, int(params.dense1.bias.shape[0]), int(params.dense2.bias.shape[0]))


def seed_gru_model(params: SeedGRUParams, variant: str = SEED_GRU_VARIANT, dtype: Any = None, device: Any = None) -> Callable:
    """SeedGRU built from canonical params -> forward(x (B, T, I)) -> probabilities. reset_after only."""
    check_variant(variant)
    return _model(params, dtype, device, convert.seed_gru_to_flax, seed_module(params))


def seed_cnn_model(params: SeedCNNParams, dtype: Any = None, device: Any = None) -> Callable:
    """SeedCNN built from canonical params -> forward(x NHWC) -> probabilities."""
    return _model(params, dtype, device, convert.seed_cnn_to_flax, seed_module(params))


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
    "FRAMEWORK", "MODE", "MODES", "NAME", "SUPPORTED_VARIANTS", "SeedCNN", "SeedGRU", "asarray", "avg_pool2d",
    "avg_pool2d_vjp", "compile", "conv2d", "conv2d_vjp", "dense", "dense_vjp", "gru", "gru_vjp", "max_pool2d",
    "max_pool2d_vjp", "relu", "relu_vjp", "seed_cnn_model", "seed_conv1d", "seed_gru_model", "seed_module", "seed_pool1d",
    "softmax", "softmax_cross_entropy", "softmax_cross_entropy_vjp", "synchronize", "to_numpy",
]  # fmt: skip
