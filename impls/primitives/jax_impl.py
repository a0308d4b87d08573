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

import numpy as np

from .. import frameworks
from ..contract import spec
from ..contract.models import SeedCNNParams, SeedGRUParams
from ..contract.spec import GRUWeights, LSTMWeights

jax = frameworks.load("jax")
jnp, lax = jax.numpy, jax.lax

NAME = "jax"
FRAMEWORK = "jax"
MODE = "jit"
MODES = ("jit",)
"""Every call is already a jax.jit computation; `compile(fn, "jit")` adds block_until_ready on its outputs."""

_DTYPES = {"float64": jnp.float64, "float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}
_DEVICES = {"cpu": "cpu", "cuda": "gpu", "gpu": "gpu"}

# --------------------------------------------------------------------------- boundary


def jax_dtype(dtype: Any) -> Any:
    """A NumPy dtype or its name, or "bfloat16" -> the jnp dtype (float64, float32, bfloat16, float16 only)."""
    name = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    if name not in _DTYPES:
        raise ValueError(f"unsupported dtype {dtype!r}; supported: {', '.join(_DTYPES)}")
    return _DTYPES[name]


def jax_device(name: str | None) -> Any:
    """"cpu" or "cuda"/"gpu" -> the first such jax device (ValueError naming what exists where there is none)."""
    if name is None:
        return None
    if name not in _DEVICES:
        raise ValueError(f"unknown device {name!r}; valid devices: {', '.join(_DEVICES)}")
    try:
        return jax.devices(_DEVICES[name])[0]
    except RuntimeError as e:
        raise ValueError(f"no jax {name} device here ({e}); devices: {jax.devices()}") from None


_ID_DTYPES = {"int64": jnp.int64, "int32": jnp.int32}  # token ids (an embedding's input): asarray only


def asarray(a: Any, dtype: Any = "float64", device: str | None = None) -> Any:
    """NumPy (or a jax array) -> a jax array of `dtype` (a float; int64/int32 for integer token ids only, floats are
    never cast to ids) on `device` (default: JAX's default device)."""
    dev = jax_device(device)
    name = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    a = a if isinstance(a, jax.Array) else np.asarray(a)
    ids = name in _ID_DTYPES and jnp.issubdtype(a.dtype, jnp.integer)  # never floats truncated to ids
    out = jnp.asarray(a, dtype=_ID_DTYPES[name] if ids else jax_dtype(dtype))
    return out if dev is None else jax.device_put(out, dev)


def to_numpy(a: Any) -> np.ndarray:
    """A jax array -> NumPy on the host; bfloat16 (which NumPy lacks) comes back as float32."""
    out = np.asarray(a)
    return out.astype(np.float32) if out.dtype == jnp.bfloat16 else out


def synchronize(device: Any = None) -> None:
    """JAX dispatches asynchronously and has no global barrier: `compile` blocks on each call's outputs
    (block_until_ready). This waits for effects only."""
    jax.effects_barrier()


def compile(fn: Callable, mode: str = MODE) -> Callable:
    """fn as run in `mode`: its calls are jax.jit computations already; the result blocks until its outputs
    are ready, so a timed call includes the device work."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r} for {NAME}; valid modes: {', '.join(MODES)}")
    return lambda *a, **k: jax.block_until_ready(fn(*a, **k))


def _like(a: Any, x: Any) -> Any:
    return jnp.asarray(a, dtype=x.dtype)


def _jit(fn: Callable, *static: str) -> Callable:
    return jax.jit(fn, static_argnames=static)


def register_pytrees(*classes: type) -> None:
    """Make the spec's weight dataclasses jax pytrees (their fields are the leaves), once."""
    for cls in classes:
        try:
            jax.tree_util.register_dataclass(cls)
        except ValueError:  # already registered
            pass


register_pytrees(spec.GRUWeights, spec.DenseWeights, spec.ConvWeights, SeedGRUParams, SeedCNNParams)

# --------------------------------------------------------------------------- activations


def _relu(x):
    return jnp.maximum(x, jnp.zeros((), x.dtype))


def _softmax(x, axis=-1):
    e = jnp.exp(x - lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True)))  # shifted: exp never overflows
    return e / jnp.sum(e, axis=axis, keepdims=True)


relu = _jit(_relu)
tanh = _jit(jnp.tanh)
sigmoid = _jit(jax.nn.sigmoid)
softmax = _jit(_softmax, "axis")

# --------------------------------------------------------------------------- GRU


def _gru(x, W, U, b_x, b_h, h0, variant):
    """x (B, T, I) -> (y (B, T, H), h_T (B, H)): one input matmul for every step, then lax.scan over time."""
    H = U.shape[0]
    xp = jnp.matmul(x, W) + (b_x if variant == "reset_after" else b_x + b_h)  # (B, T, 3H), gates z, r, h
    U_zr, U_h = U[:, : 2 * H], U[:, 2 * H :]

    def step(h, xp_t):  # h (B, H), xp_t (B, 3H)
        if variant == "reset_after":  # cuDNN, torch.nn.GRU, Keras default: r multiplies (h U_h + b_hh)
            hp = jnp.matmul(h, U) + b_h
            z = lax.logistic(xp_t[:, :H] + hp[:, :H])
            r = lax.logistic(xp_t[:, H : 2 * H] + hp[:, H : 2 * H])
            h_tilde = jnp.tanh(xp_t[:, 2 * H :] + r * hp[:, 2 * H :])
        else:  # seed, reset_before, chung: r before the recurrent product
            hp = jnp.matmul(h, U_zr)
            z = lax.logistic(xp_t[:, :H] + hp[:, :H])
            r = lax.logistic(xp_t[:, H : 2 * H] + hp[:, H:])
            h_tilde = jnp.tanh(xp_t[:, 2 * H :] + jnp.matmul(r * h, U_h))
        if variant == "seed":  # (1 - z) * h (+) r * h~, with a (+) b = (a + b) / 2
            h = ((1.0 - z) * h + r * h_tilde) / 2.0
        elif variant == "chung":
            h = (1.0 - z) * h + z * h_tilde
        else:
            h = z * h + (1.0 - z) * h_tilde
        return h, h

    h_T, ys = lax.scan(step, h0, jnp.swapaxes(xp, 0, 1))  # ys (T, B, H)
    return jnp.swapaxes(ys, 0, 1), h_T


_gru_jit = _jit(_gru, "variant")


def _gru_args(x, weights: GRUWeights, h0):
    B, H = x.shape[0], weights.U.shape[0]
    h = jnp.zeros((B, H), x.dtype) if h0 is None else _like(h0, x)
    return (x, *(_like(getattr(weights, k), x) for k in ("W", "U", "b_x", "b_h")), h)


def gru(x: Any, weights: GRUWeights, variant: str, h0: Any = None) -> tuple[Any, Any]:
    spec.check_variant(variant)
    spec.check_gru(x.shape, weights, None if h0 is None else h0.shape)
    return _gru_jit(*_gru_args(x, weights, h0), variant=variant)


# --------------------------------------------------------------------------- LSTM, embeddings, padded sequences


def _lstm(x, W, U, b_x, b_h, h0, c0):
    """x (B, T, I) -> (y (B, T, H), h_T, c_T): one input matmul for every step, then lax.scan over time with the
    gates (i, f, g, o) = sigmoid, sigmoid, tanh, sigmoid; c = f * c + i * g; h = o * tanh(c)."""
    H = U.shape[0]
    xp = jnp.matmul(x, W) + b_x  # (B, T, 4H)

    def step(state, xp_t):
        h, c = state
        a = xp_t + (jnp.matmul(h, U) + b_h)
        i, f = lax.logistic(a[:, :H]), lax.logistic(a[:, H : 2 * H])
        g, o = jnp.tanh(a[:, 2 * H : 3 * H]), lax.logistic(a[:, 3 * H :])
        c = f * c + i * g
        h = o * jnp.tanh(c)
        return (h, c), h

    (h_T, c_T), ys = lax.scan(step, (h0, c0), jnp.swapaxes(xp, 0, 1))  # ys (T, B, H)
    return jnp.swapaxes(ys, 0, 1), h_T, c_T


_lstm_jit = _jit(_lstm)


def lstm(x: Any, weights: LSTMWeights, h0: Any = None, c0: Any = None) -> tuple[Any, Any, Any]:
    """x (B, T, I) -> (y (B, T, H), h_T (B, H), c_T (B, H)); zero initial state unless h0 / c0 are given."""
    B, _, _, H = spec.check_lstm(x.shape, weights, None if h0 is None else tuple(h0.shape),
                                 None if c0 is None else tuple(c0.shape))
    h = jnp.zeros((B, H), x.dtype) if h0 is None else _like(h0, x)
    c = jnp.zeros((B, H), x.dtype) if c0 is None else _like(c0, x)
    return _lstm_jit(x, *(_like(getattr(weights, k), x) for k in ("W", "U", "b_x", "b_h")), h, c)


def embedding(ids: Any, table: Any) -> Any:
    """ids (B, T) integers -> table rows (B, T, D): a gather (jnp.take). Ids are checked at the model's boundary
    (Model.check_input): JAX's own gather would clamp or fill an id outside the table, silently."""
    return jnp.take(table, ids, axis=0)


def ids_mask(ids: Any) -> Any:
    """Keras' Embedding(mask_zero=True): id 0 is padding. (B, T) bool."""
    return ids != 0


def values_mask(x: Any, value: float) -> Any:
    """Keras' Masking(mask_value): a step is padding when every feature equals the value. (B, T) bool."""
    return jnp.any(x != value, axis=-1)


def lengths_of(mask: Any) -> Any:
    """Valid steps per row (B,): the sum alone (the mask was checked post-padded at the model's boundary). Traced
    under jit: everything that uses it is an index map, never a shape."""
    return jnp.sum(mask.astype(jnp.int32), axis=1)


def time_maps(lengths: Any, T: int) -> tuple[Any, Any, Any, Any]:
    """(valid, hold, rev, nonempty), each (B, T); what they mean is impls/primitives/numpy_seq.py's."""
    t = jnp.arange(T, dtype=lengths.dtype)[None, :]
    L = lengths[:, None]
    valid = t < L
    hold = jnp.maximum(jnp.minimum(t, L - 1), 0)
    rev = jnp.where(valid, L - 1 - t, t)
    return valid, hold, rev, jnp.broadcast_to(L > 0, valid.shape)


def take_steps(x: Any, idx: Any) -> Any:
    """x (B, T, F), idx (B, T') int -> x[b, idx[b, t]] (B, T', F)."""
    return jnp.take_along_axis(x, idx[:, :, None], axis=1)


def mask_steps(x: Any, valid: Any) -> Any:
    """x (B, T, F) with the steps where valid is False set to 0."""
    return x * valid.astype(x.dtype)[:, :, None]


def reverse_steps(x: Any) -> Any:
    """x (B, T, ...) with its time axis reversed."""
    return jnp.flip(x, axis=1)


def concat(xs: Any, axis: int = -1) -> Any:
    return jnp.concatenate(list(xs), axis=axis)


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


# --------------------------------------------------------------------------- conv, pool, dense


def _pad(x, pads, value=0.0):
    t, b, l, r = pads
    return jnp.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=value)


def _windows(x, kh, kw, stride, oh, ow, dilation=(1, 1)):
    """(B, H, W, C) -> kh*kw strided slices (B, OH, OW, C), tap (i, j) starting at (i * dh, j * dw)."""
    (sh, sw), (dh, dw) = stride, dilation
    return [x[:, i * dh : i * dh + (oh - 1) * sh + 1 : sh, j * dw : j * dw + (ow - 1) * sw + 1 : sw, :]
            for i in range(kh) for j in range(kw)]  # fmt: skip


def _conv2d(x, kernel, bias, g: spec.ConvGeometry):
    G, Cg, Og, N, KK = g.groups, g.C // g.groups, g.O // g.groups, g.B * g.OH * g.OW, g.KH * g.KW
    cols = jnp.stack(_windows(_pad(x, g.pads), g.KH, g.KW, g.stride, g.OH, g.OW, g.dilation), axis=3)  # (B, OH, OW, KK, C)
    cols = jnp.transpose(cols.reshape(N, KK, G, Cg), (2, 0, 1, 3)).reshape(G, N, KK * Cg)  # rows (i, j, c') as HWI
    k = jnp.transpose(kernel.reshape(KK, Cg, G, Og), (2, 0, 1, 3)).reshape(G, KK * Cg, Og)  # (G, KK*Cg, Og)
    y = jnp.matmul(cols, k)  # (G, N, Og)
    return jnp.transpose(y, (1, 0, 2)).reshape(g.B, g.OH, g.OW, g.O) + bias  # output o = group * Og + o'


def _max_pool2d(x, g: spec.PoolGeometry):
    """lax.reduce_window pads with its initial value, -inf: padding never wins."""
    t, b, l, r = g.pads
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, *g.pool, 1), (1, *g.stride, 1), ((0, 0), (t, b), (l, r), (0, 0)))


def _avg_pool2d(x, g: spec.PoolGeometry, count_include_pad: bool):
    t, b, l, r = g.pads
    window = ((1, *g.pool, 1), (1, *g.stride, 1), ((0, 0), (t, b), (l, r), (0, 0)))
    zero = np.zeros((), x.dtype)  # concrete: lax recognises a sum (and differentiates it)
    sums = lax.reduce_window(x, zero, lax.add, *window)
    if count_include_pad:
        return sums / (g.pool[0] * g.pool[1])
    counts = lax.reduce_window(jnp.ones((1, g.H, g.W, 1), x.dtype), zero, lax.add, *window)
    return sums / counts  # the input cells each window covers


def _dense(x, kernel, bias):
    return jnp.matmul(x, kernel) + bias


_conv_jit = _jit(_conv2d, "g")
_max_pool_jit = _jit(_max_pool2d, "g")
_avg_pool_jit = _jit(_avg_pool2d, "g", "count_include_pad")
_dense_jit = _jit(_dense)


def conv2d(x: Any, kernel: Any, bias: Any, stride: Any = 1, padding: Any = "valid", dilation: Any = 1, groups: int = 1) -> Any:
    """Cross-correlation as patches + one batched matmul over the groups. NHWC input, HWIO kernel (I = C_in / groups)."""
    g = spec.check_conv2d(x.shape, kernel.shape, bias.shape, stride, padding, dilation, groups)
    return _conv_jit(x, _like(kernel, x), _like(bias, x), g=g)


def max_pool2d(x: Any, pool: Any = 2, stride: Any = None, padding: Any = "valid") -> Any:
    return _max_pool_jit(x, g=spec.check_pool2d(x.shape, pool, stride, padding))


def avg_pool2d(x: Any, pool: Any = 2, stride: Any = None, padding: Any = "valid", count_include_pad: bool = False) -> Any:
    """Window sums over the window size (count_include_pad=True) or the input cells it covers (False)."""
    flag = spec.check_count_include_pad(count_include_pad)
    return _avg_pool_jit(x, g=spec.check_pool2d(x.shape, pool, stride, padding, op="avg_pool2d"), count_include_pad=flag)


def dense(x: Any, kernel: Any, bias: Any) -> Any:
    spec.check_dense(x.shape, kernel.shape, bias.shape)
    return _dense_jit(x, _like(kernel, x), _like(bias, x))


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


# --------------------------------------------------------------------------- gradients (jax.vjp): impls/primitives/jax_grads.py

from ..train.jax_train import train_seed_model
from .jax_grads import (
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

__all__ = [
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
