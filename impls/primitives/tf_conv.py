"""The TensorFlow voice's 2-D convolution and pools from primitives (strided slices, one batched matmul, reduce_max,
add_n), each forward with its GradientTape vjp beside it. Re-exported by tf_impl.py; kept apart so each module stays
readable. Geometry (groups, dilation, 'valid' / 'same' / explicit padding) comes from spec.check_conv2d /
check_pool2d."""

from __future__ import annotations

from ..contract import spec
from .tf_core import _like, _vjp, tf


def _pad(x, pads, value=0.0):
    t, b, l, r = pads
    return tf.pad(x, [[0, 0], [t, b], [l, r], [0, 0]], constant_values=value)


def _windows(x, kh, kw, stride, oh, ow, dilation=(1, 1)):
    """(B, H, W, C) -> kh*kw strided slices (B, OH, OW, C), in (i, j) row-major order; tap (i, j) starts
    at (i * dh, j * dw)."""
    (sh, sw), (dh, dw) = stride, dilation
    return [
        x[:, i * dh : i * dh + (oh - 1) * sh + 1 : sh, j * dw : j * dw + (ow - 1) * sw + 1 : sw, :]
        for i in range(kh)
        for j in range(kw)
    ]


def conv2d(x, kernel, bias, stride=1, padding="valid", dilation=1, groups=1):
    """Cross-correlation, NHWC input, HWIO kernel (I = C_in / groups); 'same' pads as TensorFlow (the odd
    pixel after). One batched matmul over the groups."""
    g = spec.check_conv2d(x.shape, kernel.shape, bias.shape, stride, padding, dilation, groups)
    G, Cg, Og, N, KK = g.groups, g.C // g.groups, g.O // g.groups, g.B * g.OH * g.OW, g.KH * g.KW
    cols = tf.stack(_windows(_pad(x, g.pads), g.KH, g.KW, g.stride, g.OH, g.OW, g.dilation), axis=3)  # (B, OH, OW, KK, C)
    cols = tf.transpose(tf.reshape(cols, (N, KK, G, Cg)), (2, 0, 1, 3))  # (G, N, KK, Cg)
    cols = tf.reshape(cols, (G, N, KK * Cg))  # rows (i, j, c'), as the kernel's HWI
    k = tf.transpose(tf.reshape(_like(kernel, x), (KK, Cg, G, Og)), (2, 0, 1, 3))  # (G, KK, Cg, Og)
    y = tf.matmul(cols, tf.reshape(k, (G, KK * Cg, Og)))  # (G, N, Og)
    y = tf.reshape(tf.transpose(y, (1, 0, 2)), (g.B, g.OH, g.OW, g.O))  # output o = group * Og + o'
    return y + _like(bias, x)


def max_pool2d(x, pool=2, stride=None, padding="valid"):
    """Max over windows; padding pads with -inf so that padding never wins."""
    g = spec.check_pool2d(x.shape, pool, stride, padding)
    win = tf.stack(_windows(_pad(x, g.pads, float("-inf")), *g.pool, g.stride, g.OH, g.OW))  # (ph*pw, B, OH, OW, C)
    return tf.reduce_max(win, axis=0)  # its gradient splits dy among tied maxima (TIE_ROUTING declares it)


def avg_pool2d(x, pool=2, stride=None, padding="valid", count_include_pad=False):
    """Window sums of the zero-padded input over the window size (count_include_pad=True) or over the
    input cells each window covers (False, TensorFlow's own AvgPool rule)."""
    spec.check_count_include_pad(count_include_pad)
    g = spec.check_pool2d(x.shape, pool, stride, padding, op="avg_pool2d")
    sums = tf.add_n(_windows(_pad(x, g.pads), *g.pool, g.stride, g.OH, g.OW))  # (B, OH, OW, C)
    if count_include_pad:
        return sums / tf.cast(g.pool[0] * g.pool[1], x.dtype)
    ones = _pad(tf.ones((1, g.H, g.W, 1), dtype=x.dtype), g.pads)  # 1 on input cells, 0 on padding
    return sums / tf.add_n(_windows(ones, *g.pool, g.stride, g.OH, g.OW))


def conv2d_vjp(x, kernel, bias, dy, stride=1, padding="valid", dilation=1, groups=1) -> dict:
    g = spec.check_conv2d(x.shape, kernel.shape, bias.shape, stride, padding, dilation, groups)
    spec.check_dy("conv2d_vjp", dy.shape, (g.B, g.OH, g.OW, g.O))
    inputs = {"x": x, "kernel": _like(kernel, x), "bias": _like(bias, x)}
    return _vjp(lambda x, kernel, bias: conv2d(x, kernel, bias, stride, padding, dilation, groups), inputs, [_like(dy, x)])


def max_pool2d_vjp(x, dy, pool=2, stride=None, padding="valid") -> dict:
    g = spec.check_pool2d(x.shape, pool, stride, padding)
    spec.check_dy("max_pool2d_vjp", dy.shape, (g.B, g.OH, g.OW, g.C))
    return _vjp(lambda x: max_pool2d(x, pool, stride, padding), {"x": x}, [_like(dy, x)])


def avg_pool2d_vjp(x, dy, pool=2, stride=None, padding="valid", count_include_pad=False) -> dict:
    g = spec.check_pool2d(x.shape, pool, stride, padding, op="avg_pool2d")
    spec.check_dy("avg_pool2d_vjp", dy.shape, (g.B, g.OH, g.OW, g.C))
    return _vjp(lambda x: avg_pool2d(x, pool, stride, padding, count_include_pad), {"x": x}, [_like(dy, x)])
