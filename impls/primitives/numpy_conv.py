"""The NumPy reference's 2-D convolution and pools, each forward with its hand-written backward beside it.

Re-exported by impls/primitives/numpy_impl.py (the reference voice); kept apart so each module stays readable.
Geometry (groups, dilation, 'valid' / 'same' / explicit padding) comes from spec.check_conv2d /
check_pool2d (impls/contract/conv_spec.py). Conv2d is a strided, dilated window view plus one einsum per call
(JAX lax_reference's way), grouped by splitting the channel axis into (groups, C_in / groups).

Conventions decided here (verify/ checks each voice against them):
- max_pool2d pads with -inf (padding never wins) and routes each window's dy to its first maximum in
  row-major order; overlapping windows add.
- avg_pool2d divides each window's sum by the number of input cells it covers (count_include_pad=False,
  TensorFlow's and Keras' rule, and the default here) or by the full window (count_include_pad=True,
  torch.nn.AvgPool2d's default); padded cells are zeros either way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..contract import spec


def _pad(x, pads, value=0.0):
    t, b, l, r = pads
    return np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=value)


def _unpad(xp, pads, H, W):
    """The adjoint of padding: the gradient of the padded border is dropped."""
    return xp[:, pads[0] : pads[0] + H, pads[2] : pads[2] + W, :]


def _windows(x, kh, kw, stride, oh, ow, dilation=(1, 1)):
    """(B, H, W, C) -> strided, dilated view (B, OH, OW, C, KH, KW): tap (i, j) of output (oh, ow) is
    input (oh * sh + i * dh, ow * sw + j * dw)."""
    dh, dw = dilation
    v = sliding_window_view(x, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(1, 2))[..., ::dh, ::dw]
    return v[:, :: stride[0], :: stride[1]][:, :oh, :ow]


def _scatter_windows(dxp, dcols, stride, oh, ow, dilation=(1, 1)):
    """The adjoint of _windows: add dcols (B, OH, OW, C, KH, KW) back onto the padded input (overlaps add)."""
    (sh, sw), (dh, dw) = stride, dilation
    for i in range(dcols.shape[4]):
        for j in range(dcols.shape[5]):
            dxp[:, i * dh : i * dh + sh * (oh - 1) + 1 : sh, j * dw : j * dw + sw * (ow - 1) + 1 : sw, :] += dcols[..., i, j]
    return dxp


# --------------------------------------------------------------------------- conv2d


def conv2d(x, kernel, bias, stride=1, padding: Any = "valid", dilation=1, groups: int = 1):
    """Cross-correlation, NHWC input, HWIO kernel (I = C_in / groups); 'same' pads as TensorFlow."""
    g = spec.check_conv2d(x.shape, kernel.shape, bias.shape, stride, padding, dilation, groups)
    G, Cg, Og = g.groups, g.C // g.groups, g.O // g.groups
    cols = _windows(_pad(x, g.pads), g.KH, g.KW, g.stride, g.OH, g.OW, g.dilation)  # (B, OH, OW, C, KH, KW)
    cols = cols.reshape(g.B, g.OH, g.OW, G, Cg, g.KH, g.KW)  # channel c = group * Cg + c'
    k = kernel.astype(x.dtype).reshape(g.KH, g.KW, Cg, G, Og)  # output o = group * Og + o'
    # optimize=True lets einsum hand the contraction to BLAS (a copy of the windows, then one matmul)
    y = np.einsum("bhwgcij,ijcgo->bhwgo", cols, k, optimize=True)
    return y.reshape(g.B, g.OH, g.OW, g.O) + bias.astype(x.dtype)


def conv2d_vjp(x, kernel, bias, dy, stride=1, padding: Any = "valid", dilation=1, groups: int = 1) -> dict[str, np.ndarray]:
    """Gradients of <dy, conv2d(x, kernel, bias)>: dkernel contracts the same window view with dy (per
    group), dx scatters dy x kernel back onto every window tap (overlaps add), then drops the padding."""
    g = spec.check_conv2d(x.shape, kernel.shape, bias.shape, stride, padding, dilation, groups)
    spec.check_dy("conv2d_vjp", dy.shape, (g.B, g.OH, g.OW, g.O))
    G, Cg, Og = g.groups, g.C // g.groups, g.O // g.groups
    k, dy = kernel.astype(x.dtype).reshape(g.KH, g.KW, Cg, G, Og), dy.astype(x.dtype)
    dyg = dy.reshape(g.B, g.OH, g.OW, G, Og)
    xp = _pad(x, g.pads)
    cols = _windows(xp, g.KH, g.KW, g.stride, g.OH, g.OW, g.dilation).reshape(g.B, g.OH, g.OW, G, Cg, g.KH, g.KW)
    dkernel = np.einsum("bhwgcij,bhwgo->ijcgo", cols, dyg, optimize=True).reshape(g.KH, g.KW, Cg, g.O)
    dcols = np.einsum("bhwgo,ijcgo->bhwgcij", dyg, k, optimize=True).reshape(g.B, g.OH, g.OW, g.C, g.KH, g.KW)
    dxp = _scatter_windows(np.zeros_like(xp), dcols, g.stride, g.OH, g.OW, g.dilation)
    return {"x": _unpad(dxp, g.pads, g.H, g.W), "kernel": dkernel, "bias": dy.sum(axis=(0, 1, 2))}


# --------------------------------------------------------------------------- max_pool2d


def max_pool2d(x, pool=2, stride=None, padding: Any = "valid"):
    """Max over windows; padding pads with -inf, so padding never wins."""
    g = spec.check_pool2d(x.shape, pool, stride, padding)
    win = _windows(_pad(x, g.pads, -np.inf), *g.pool, g.stride, g.OH, g.OW)  # (B, OH, OW, C, ph, pw)
    return win.max(axis=(4, 5))


def max_pool2d_vjp(x, dy, pool=2, stride=None, padding: Any = "valid") -> dict[str, np.ndarray]:
    """Each window's dy goes to one input: the first maximum in row-major window order (ties go to the
    top-most, then left-most, as torch and TensorFlow's CPU kernels do; a NaN counts as the maximum,
    np.argmax's rule). Overlapping windows (stride < pool) add."""
    g = spec.check_pool2d(x.shape, pool, stride, padding)
    spec.check_dy("max_pool2d_vjp", dy.shape, (g.B, g.OH, g.OW, g.C))
    (ph, pw), (sh, sw) = g.pool, g.stride
    xp = _pad(x, g.pads, -np.inf)
    win = _windows(xp, ph, pw, g.stride, g.OH, g.OW).reshape(g.B, g.OH, g.OW, g.C, ph * pw)
    i, j = np.divmod(np.argmax(win, axis=-1), pw)  # (B, OH, OW, C): the winner's row and column
    rows = np.arange(g.OH)[None, :, None, None] * sh + i
    cols = np.arange(g.OW)[None, None, :, None] * sw + j
    b, c = np.arange(g.B)[:, None, None, None], np.arange(g.C)[None, None, None, :]
    dxp = np.zeros(xp.shape, dtype=x.dtype)
    np.add.at(dxp, (b, rows, cols, c), dy.astype(x.dtype))
    return {"x": _unpad(dxp, g.pads, g.H, g.W)}


# --------------------------------------------------------------------------- avg_pool2d


def avg_pool_counts(geometry: spec.PoolGeometry, count_include_pad: bool, dtype) -> np.ndarray:
    """The divisor of each output cell, (1, OH, OW, 1): the window's size, or the input cells it covers."""
    g = geometry
    if count_include_pad:
        return np.full((1, g.OH, g.OW, 1), g.pool[0] * g.pool[1], dtype=dtype)
    ones = _pad(np.ones((1, g.H, g.W, 1), dtype=dtype), g.pads)  # 1 on input cells, 0 on padding
    return _windows(ones, *g.pool, g.stride, g.OH, g.OW).sum(axis=(4, 5))


def avg_pool2d(x, pool=2, stride=None, padding: Any = "valid", count_include_pad: bool = False):
    """Mean over windows of the zero-padded input. count_include_pad=False (TensorFlow, Keras) divides by
    the input cells a window covers; True (torch.nn.AvgPool2d's default) by the whole window."""
    flag = spec.check_count_include_pad(count_include_pad)
    g = spec.check_pool2d(x.shape, pool, stride, padding, op="avg_pool2d")
    sums = _windows(_pad(x, g.pads), *g.pool, g.stride, g.OH, g.OW).sum(axis=(4, 5))  # (B, OH, OW, C)
    return sums / avg_pool_counts(g, flag, x.dtype)


def avg_pool2d_vjp(x, dy, pool=2, stride=None, padding: Any = "valid", count_include_pad: bool = False) -> dict[str, np.ndarray]:
    """Each window's dy / divisor goes to every cell of the window; padding's share is dropped."""
    flag = spec.check_count_include_pad(count_include_pad)
    g = spec.check_pool2d(x.shape, pool, stride, padding, op="avg_pool2d")
    spec.check_dy("avg_pool2d_vjp", dy.shape, (g.B, g.OH, g.OW, g.C))
    share = dy.astype(x.dtype) / avg_pool_counts(g, flag, x.dtype)  # (B, OH, OW, C)
    dcols = np.broadcast_to(share[..., None, None], (*share.shape, *g.pool))
    dxp = _scatter_windows(np.zeros_like(_pad(x, g.pads)), dcols, g.stride, g.OH, g.OW)
    return {"x": _unpad(dxp, g.pads, g.H, g.W)}
