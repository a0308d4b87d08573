"""The JAX voice's 2-D convolution, pools and dense from primitives: conv2d as patches (strided slices) + one batched
matmul, pooling as lax.reduce_window, each jitted per configuration. Re-exported by jax_impl.py; jax_grads.py
differentiates the same forwards (`_conv2d`, `_max_pool2d`, `_avg_pool2d`, `_dense`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..contract import spec
from .jax_core import _jit, _like, jnp, lax


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
