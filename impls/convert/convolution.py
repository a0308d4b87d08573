"""Convolution kernels and padding: canonical <-> torch, Keras' DepthwiseConv2D, ONNX.

- conv: canonical HWIO kernel, NHWC images; torch OIHW kernel, NCHW images; with groups both hold
  I = C_in / groups and output channel o in group o // (C_out / groups), so one transpose serves every groups;
  Keras DepthwiseConv2D (KH, KW, C, M) is the grouped kernel (KH, KW, 1, C * M) with output c * M + m
- conv, dense in Flax: HWIO kernels on NHWC images and (in, out) kernels, the canonical layouts themselves
- padding: canonical (top, bottom, left, right); ONNX pads [top, left, bottom, right]; torch F.pad /
  nn.ZeroPad2d (left, right, top, bottom)
"""

from __future__ import annotations

import numpy as np

from ..contract.spec import ShapeError
from .common import _np


def hwio_to_oihw(k: np.ndarray) -> np.ndarray:
    """(KH, KW, I, O) -> (O, I, KH, KW). Grouped kernels too: both layouts hold I = C_in / groups."""
    return np.ascontiguousarray(np.transpose(k, (3, 2, 0, 1)))


def oihw_to_hwio(k: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(k, (2, 3, 1, 0)))


def depthwise_to_grouped(k: np.ndarray) -> np.ndarray:
    """Keras DepthwiseConv2D kernel (KH, KW, C, M) -> canonical grouped HWIO (KH, KW, 1, C * M), groups = C:
    output channel c * M + m is input channel c's m-th filter in both."""
    k = _np(k)
    if k.ndim != 4:
        raise ShapeError(f"a depthwise kernel is (KH, KW, C, M), got shape {k.shape}")
    kh, kw, c, m = k.shape
    return np.ascontiguousarray(k.reshape(kh, kw, 1, c * m))


def grouped_to_depthwise(k: np.ndarray, groups: int) -> np.ndarray:
    """Canonical HWIO (KH, KW, 1, C * M) with groups = C -> Keras DepthwiseConv2D kernel (KH, KW, C, M)."""
    k = _np(k)
    if k.ndim != 4 or k.shape[2] != 1 or k.shape[3] % groups:
        raise ShapeError(f"a depthwise (groups = C_in) HWIO kernel is (KH, KW, 1, C * M) with C = groups; "
                         f"got kernel.shape={k.shape}, groups={groups}")  # fmt: skip
    return np.ascontiguousarray(k.reshape(k.shape[0], k.shape[1], groups, k.shape[3] // groups))


def pads_to_onnx(pads: tuple[int, int, int, int]) -> list[int]:
    """Canonical (top, bottom, left, right) -> ONNX pads [top, left, bottom, right] (begins, then ends)."""
    t, b, l, r = pads
    return [t, l, b, r]


def pads_from_onnx(pads) -> tuple[tuple[int, int], tuple[int, int]]:
    """ONNX pads [top, left, bottom, right] -> canonical explicit padding ((top, bottom), (left, right))."""
    t, l, b, r = (int(p) for p in pads)
    return (t, b), (l, r)


def pads_to_torch(pads: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """Canonical (top, bottom, left, right) -> F.pad / nn.ZeroPad2d order on NCHW (left, right, top, bottom)."""
    t, b, l, r = pads
    return l, r, t, b
