"""The torch voice's 2-D convolution and pools from primitives (unfold, one batched matmul, amax, sum), each forward
with its autograd vjp beside it. Re-exported by torch_impl.py; kept apart so each module stays readable.
Geometry (groups, dilation, 'valid' / 'same' / explicit padding) comes from spec.check_conv2d / check_pool2d."""

from __future__ import annotations

from typing import Any

from ..contract import spec
from .torch_core import _leaf, _like, _vjp, torch

F = torch.nn.functional  # F.pad only: padding is data movement, not the math under test

def _windows(x: Any, kh: int, kw: int, stride: tuple[int, int], oh: int, ow: int, dilation=(1, 1)) -> Any:
    """(B, H, W, C) -> strided, dilated view (B, OH, OW, C, KH, KW)."""
    dh, dw = dilation
    v = x.unfold(1, (kh - 1) * dh + 1, stride[0]).unfold(2, (kw - 1) * dw + 1, stride[1])
    return v[:, :oh, :ow, :, ::dh, ::dw]


def _pad_nhwc(x: Any, pads: tuple[int, int, int, int], value: float = 0.0) -> Any:
    t, b, l, r = pads
    if not any(pads):
        return x
    return F.pad(x, (0, 0, l, r, t, b), value=value)  # pads run from the last axis back


def conv2d(x: Any, kernel: Any, bias: Any, stride: Any = 1, padding: Any = "valid", dilation: Any = 1, groups: int = 1) -> Any:
    """Cross-correlation as im2col + one (batched, per group) GEMM. NHWC input, HWIO kernel (I = C_in / groups)."""
    g = spec.check_conv2d(x.shape, kernel.shape, bias.shape, stride, padding, dilation, groups)
    G, Cg, Og, N = g.groups, g.C // g.groups, g.O // g.groups, g.B * g.OH * g.OW
    cols = _windows(_pad_nhwc(x, g.pads), g.KH, g.KW, g.stride, g.OH, g.OW, g.dilation)  # (B, OH, OW, C, KH, KW)
    cols = cols.reshape(g.B, g.OH, g.OW, G, Cg, g.KH, g.KW).permute(3, 0, 1, 2, 5, 6, 4)  # (G, B, OH, OW, KH, KW, Cg)
    cols = cols.reshape(G, N, g.KH * g.KW * Cg)  # rows in HWI order, one matrix per group
    k = _like(kernel, x).reshape(g.KH * g.KW * Cg, G, Og).permute(1, 0, 2)  # (G, KH*KW*Cg, Og)
    y = torch.matmul(cols, k).permute(1, 0, 2).reshape(g.B, g.OH, g.OW, g.O)  # output o = group * Og + o'
    return y + _like(bias, x)


def max_pool2d(x: Any, pool: Any = 2, stride: Any = None, padding: Any = "valid") -> Any:
    """Max over windows; padding pads with -inf, so padding never wins."""
    g = spec.check_pool2d(x.shape, pool, stride, padding)
    win = _windows(_pad_nhwc(x, g.pads, float("-inf")), *g.pool, g.stride, g.OH, g.OW)  # (B, OH, OW, C, ph, pw)
    return torch.amax(win, dim=(4, 5))


def avg_pool2d(x: Any, pool: Any = 2, stride: Any = None, padding: Any = "valid", count_include_pad: bool = False) -> Any:
    """Window sums of the zero-padded input over the window size (count_include_pad=True) or over the
    input cells each window covers (False, TensorFlow's rule): the divisor is data, not learned."""
    spec.check_count_include_pad(count_include_pad)
    g = spec.check_pool2d(x.shape, pool, stride, padding, op="avg_pool2d")
    sums = torch.sum(_windows(_pad_nhwc(x, g.pads), *g.pool, g.stride, g.OH, g.OW), dim=(4, 5))  # (B, OH, OW, C)
    if count_include_pad:
        return sums / (g.pool[0] * g.pool[1])
    ones = _pad_nhwc(x.new_ones((1, g.H, g.W, 1)), g.pads)  # 1 on input cells, 0 on padding
    return sums / torch.sum(_windows(ones, *g.pool, g.stride, g.OH, g.OW), dim=(4, 5))


def conv2d_vjp(x: Any, kernel: Any, bias: Any, dy: Any, stride: Any = 1, padding: Any = "valid", dilation: Any = 1,
               groups: int = 1) -> dict[str, Any]:  # fmt: skip
    g = spec.check_conv2d(x.shape, kernel.shape, bias.shape, stride, padding, dilation, groups)
    spec.check_dy("conv2d_vjp", dy.shape, (g.B, g.OH, g.OW, g.O))
    leaves = {"x": _leaf(x, x), "kernel": _leaf(kernel, x), "bias": _leaf(bias, x)}
    with torch.enable_grad():
        y = conv2d(leaves["x"], leaves["kernel"], leaves["bias"], stride, padding, dilation, groups)
        return _vjp(y, _like(dy, x), leaves)


def max_pool2d_vjp(x: Any, dy: Any, pool: Any = 2, stride: Any = None, padding: Any = "valid") -> dict[str, Any]:
    g = spec.check_pool2d(x.shape, pool, stride, padding)
    spec.check_dy("max_pool2d_vjp", dy.shape, (g.B, g.OH, g.OW, g.C))
    leaves = {"x": _leaf(x, x)}
    with torch.enable_grad():
        return _vjp(max_pool2d(leaves["x"], pool, stride, padding), _like(dy, x), leaves)


def avg_pool2d_vjp(x: Any, dy: Any, pool: Any = 2, stride: Any = None, padding: Any = "valid",
                   count_include_pad: bool = False) -> dict[str, Any]:  # fmt: skip
    g = spec.check_pool2d(x.shape, pool, stride, padding, op="avg_pool2d")
    spec.check_dy("avg_pool2d_vjp", dy.shape, (g.B, g.OH, g.OW, g.C))
    leaves = {"x": _leaf(x, x)}
    with torch.enable_grad():
        return _vjp(avg_pool2d(leaves["x"], pool, stride, padding, count_include_pad), _like(dy, x), leaves)
