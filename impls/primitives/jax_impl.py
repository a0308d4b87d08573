"""JAX from primitives: the contract written with jnp.matmul, lax.logistic, jnp.tanh, lax.scan, strided slices,
jnp.pad, lax.reduce_window, jnp.exp, jnp.log, gathers (jnp.take, take_along_axis) and jnp.flip only.

No flax module, no jax.nn layer helper and no lax.conv_general_dilated here: those are (or sit under) the built-in
voice (impls/builtin/flax_builtin.py). conv2d is patches (strided slices) + one batched matmul, like the torch and
TensorFlow voices; pooling is lax.reduce_window; the GRU is one lax.scan over the timesteps. Gradients are
jax.vjp over these same functions. Every contract function runs as one jax.jit-compiled XLA computation, cached
per configuration (jax.jit itself caches per shape and dtype), so a call compiles once per shape and then
dispatches. float64 needs `jax_enable_x64`, which impls/frameworks.py sets when it loads JAX.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..contract import spec
from ..train.jax_train import train_seed_model
from .jax_activations import clip, gelu, gelu_tanh, hard_sigmoid, hard_swish, leaky_relu, relu6, silu
from .jax_conv import _pad, avg_pool2d, conv2d, dense, max_pool2d
from .jax_core import (
    _like,
    asarray,
    jax,
    jax_device,
    jax_dtype,
    jnp,
    lax,
    register_pytrees,
    relu,
    sigmoid,
    softmax,
    synchronize,
    tanh,
    to_numpy,
)
from .jax_grads import (  # gradients: jax.vjp over the forwards below and in the sibling modules
    avg_pool2d_vjp,
    chain_vjp,
    conv2d_vjp,
    dense_vjp,
    gru_vjp,
    max_pool2d_vjp,
    relu_vjp,
    softmax_cross_entropy,
    softmax_cross_entropy_vjp,
)
from .jax_seq import (
    concat,
    embedding,
    gru,
    ids_mask,
    lengths_of,
    lstm,
    mask_steps,
    mean_steps,
    reverse_steps,
    take_steps,
    time_maps,
    values_mask,
)
from .jax_norm import lrn  # issue 24's normalization family
from .jax_attn import mask_scores, matmul, prepend_token  # attention's ops (issue 25)


NAME = "jax"
FRAMEWORK = "jax"
MODE = "jit"
MODES = ("jit",)
"""Every call is already a jax.jit computation; `compile(fn, "jit")` adds block_until_ready on its outputs."""

# --------------------------------------------------------------------------- boundary (dtypes, arrays: jax_core.py)


def compile(fn: Callable, mode: str = MODE) -> Callable:
    """fn as run in `mode`: its calls are jax.jit computations already; the result blocks until its outputs
    are ready, so a timed call includes the device work."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r} for {NAME}; valid modes: {', '.join(MODES)}")
    return lambda *a, **k: jax.block_until_ready(fn(*a, **k))


# --------------------------------------------------------------------------- shapes and reductions (issue 18's kinds)
# Plain jnp/lax calls (no per-op jit): inside the model's one jitted chain they trace into it.


def reshape(x: Any, shape: Any) -> Any:
    """Row-major (C order), as NumPy's."""
    return jnp.reshape(x, tuple(int(d) for d in shape))


def transpose(x: Any, perm: Any) -> Any:
    return jnp.transpose(x, tuple(int(p) for p in perm))


def mean(x: Any, axes: Any, keepdims: bool = False) -> Any:
    return jnp.mean(x, axis=tuple(int(a) for a in axes), keepdims=keepdims)


def amax(x: Any, axes: Any, keepdims: bool = False) -> Any:
    """The maximum over `axes` as a gather at its argmax (the first maximum in row-major order over those axes), so
    its vjp sends dy to that one element, as the reference's does. Not jnp.max: its vjp finds the maxima by
    comparing the operand with the result for equality, and inside one jitted forward + backward XLA may recompute
    the operand (a layer norm before the pool) with a different rounding, so that no element or the wrong ones
    match: measured here as dL/dbias wrong by O(1) on conv1d -> layer_norm -> global_max_pool, correct unjitted."""
    nd = x.ndim
    red = sorted({int(a) % nd for a in axes})
    kept = [a for a in range(nd) if a not in red]
    xt = jnp.transpose(x, (*kept, *red))
    flat = jnp.reshape(xt, (*(x.shape[a] for a in kept), -1))
    idx = jnp.argmax(flat, axis=-1, keepdims=True)  # the first maximum
    y = jnp.take_along_axis(flat, idx, axis=-1)[..., 0]
    if keepdims:
        y = jnp.reshape(y, tuple(1 if a in red else x.shape[a] for a in range(nd)))
    return y


def rsqrt(x: Any) -> Any:
    return lax.rsqrt(x)


# --------------------------------------------------------------------------- the seed's 1-D equations


@jax.jit
def _seed_conv1d(x, w, b):
    K, L = w.shape[0], x.shape[1]
    y = b + w[0] * x[:, : L - K + 1, :]
    for k in range(1, K):  # k is the seed's k - 1
        y = y + w[k] * x[:, k : k + L - K + 1, :]
    return y


def seed_conv1d(x: Any, w: Any, b: Any) -> Any:
    """Seed section 2.2: y_ij = sum_k w_ik x_i,j+k-1 + b_i per channel. (B, L, C) -> (B, L-K+1, C)."""
    spec.check_seed_conv1d(x.shape, w.shape, b.shape)
    return _seed_conv1d(x, _like(w, x), _like(b, x))


@jax.jit
def _seed_pool1d(y):
    return jnp.maximum(y[:, :-1, :], y[:, 1:, :])


def seed_pool1d(y: Any) -> Any:
    """Seed section 2.2: x_ij = max(y_ij, y_i,j+1). (B, L, C) -> (B, L-1, C)."""
    spec.check_seed_pool1d(y.shape)
    return _seed_pool1d(y)


# --------------------------------------------------------------------------- the seed models


def jit_model(chain: Callable) -> Callable:
    """A whole model description's chain of (weights, x) as one jitted program (impls/model/compose.py)."""
    return jax.jit(chain)


def zero_pad2d(x: Any, pads: tuple[int, int, int, int]) -> Any:
    """NHWC zeros around each image: pads (top, bottom, left, right)."""
    return _pad(x, tuple(int(p) for p in pads))


def flatten(x: Any) -> Any:
    """(B, ...) -> (B, prod(...)), in memory order: for NHWC that is Keras' (h, w, c) order."""
    return x.reshape(x.shape[0], -1)


__all__ = [
    "clip",
    "gelu",
    "gelu_tanh",
    "hard_sigmoid",
    "hard_swish",
    "leaky_relu",
    "relu6",
    "silu",
    "mask_scores",
    "matmul",
    "prepend_token",
    "FRAMEWORK",
    "MODE",
    "MODES",
    "NAME",
    "amax",
    "asarray",
    "avg_pool2d",
    "avg_pool2d_vjp",
    "chain_vjp",
    "compile",
    "concat",
    "conv2d",
    "conv2d_vjp",
    "dense",
    "dense_vjp",
    "embedding",
    "flatten",
    "gru",
    "gru_vjp",
    "ids_mask",
    "jax_device",
    "jax_dtype",
    "jit_model",
    "lengths_of",
    "lstm",
    "mask_steps",
    "mean_steps",
    "max_pool2d",
    "max_pool2d_vjp",
    "mean",
    "register_pytrees",
    "relu",
    "relu_vjp",
    "reshape",
    "reverse_steps",
    "rsqrt",
    "seed_conv1d",
    "seed_pool1d",
    "sigmoid",
    "softmax",
    "softmax_cross_entropy",
    "softmax_cross_entropy_vjp",
    "synchronize",
    "take_steps",
    "tanh",
    "time_maps",
    "to_numpy",
    "train_seed_model",
    "transpose",
    "values_mask",
    "zero_pad2d",
]  # fmt: skip
