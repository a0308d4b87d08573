"""Geometry of conv2d and the 2-D pools, framework-free: padding, dilation, groups, output sizes.

Every backend asks `check_conv2d` / `check_pool2d` first and computes on the answer; nothing here
imports a framework. Conventions (canonical = the seed's Keras layout):

    images      NHWC
    kernels     HWIO with I = C_in / groups: output channel o belongs to group o // (C_out / groups)
                (TensorFlow's and PyTorch's convention; depthwise is groups = C_in, and its output
                channel c * M + m is input channel c's m-th filter, as Keras' DepthwiseConv2D orders them)
    padding     "valid", "same" (TensorFlow's: output ceil(n / s), the odd pixel after), or explicit
                ((top, bottom), (left, right)) in input pixels
    dilation    d >= 1 per axis: a kernel tap (i, j) reads input (oh * sh + i * dh, ow * sw + j * dw)
    pools       no dilation, explicit pads smaller than the window (ONNX's rule: no window all padding)

Every refusal is a `ShapeError` whose message names every shape and option involved.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

PADDINGS = ("valid", "same")


class ShapeError(ValueError):
    """An input whose shape, rank or size does not fit the operation. The message names the shapes."""


def pair(value: Any, name: str) -> tuple[int, int]:
    """An int or a pair of positive ints, as a pair."""
    vals = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(vals) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in vals):
        raise ValueError(f"{name} must be a positive int or a pair of positive ints, got {value!r}")
    if min(vals) < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return int(vals[0]), int(vals[1])


def is_explicit(padding: Any) -> bool:
    return not isinstance(padding, str)


def padding_label(padding: Any) -> str:
    """'valid', 'same' or 'p1_0_2_1' (top, bottom, left, right): for test ids and messages."""
    if not is_explicit(padding):
        return str(padding)
    (t, b), (l, r) = padding
    return f"p{t}_{b}_{l}_{r}"


def _explicit_pads(padding: Any, msg: str) -> tuple[int, int, int, int]:
    """((top, bottom), (left, right)) -> (top, bottom, left, right); ShapeError naming `msg` otherwise."""
    try:
        (t, b), (l, r) = padding
    except (TypeError, ValueError):
        raise ValueError(
            f"padding must be 'valid', 'same' or ((top, bottom), (left, right)); got {padding!r}: {msg}"
        ) from None
    pads = (t, b, l, r)
    if not all(isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in pads):
        raise ValueError(f"explicit pads must be ints, got {padding!r}: {msg}")
    if min(pads) < 0:
        raise ShapeError(f"explicit pads must be >= 0, got padding={padding!r}: {msg}")
    return tuple(int(p) for p in pads)  # type: ignore[return-value]


def check_padding(padding: Any) -> Any:
    """'valid', 'same' or an explicit ((top, bottom), (left, right)) of ints >= 0."""
    if isinstance(padding, str):
        if padding not in PADDINGS:
            raise ValueError(f"unknown padding {padding!r}; valid paddings: {', '.join(PADDINGS)} "
                             "or ((top, bottom), (left, right))")  # fmt: skip
        return padding
    _explicit_pads(padding, f"padding={padding!r}")
    return padding


def same_pads(n: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding along one axis for an (effective) window k: output ceil(n/s);
    the odd pixel goes after."""
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def out_size(n: int, k: int, s: int, padding: str) -> int:
    """Output length along one axis for 'valid' / 'same' and an (effective) window k."""
    if padding == "same":
        return -(-n // s)
    return (n - k) // s + 1


def _pads_and_out(H: int, W: int, ekh: int, ekw: int, sh: int, sw: int, padding: Any, msg: str):
    if padding == "same":
        pads = (*same_pads(H, ekh, sh), *same_pads(W, ekw, sw))
    elif padding == "valid":
        pads = (0, 0, 0, 0)
    else:
        pads = _explicit_pads(padding, msg)
    t, b, l, r = pads
    return pads, (H + t + b - ekh) // sh + 1, (W + l + r - ekw) // sw + 1


class ConvGeometry(NamedTuple):
    """spec.check_conv2d's answer."""

    B: int
    H: int
    W: int
    C: int  # input channels
    KH: int
    KW: int
    O: int  # output channels
    stride: tuple[int, int]
    pads: tuple[int, int, int, int]  # top, bottom, left, right
    OH: int
    OW: int
    dilation: tuple[int, int]
    groups: int

    @property
    def effective_kernel(self) -> tuple[int, int]:
        """The span a dilated kernel covers: (K - 1) * d + 1 per axis."""
        return (self.KH - 1) * self.dilation[0] + 1, (self.KW - 1) * self.dilation[1] + 1


def check_conv2d(x_shape, kernel_shape, bias_shape, stride=1, padding: Any = "valid", dilation=1,
                 groups: int = 1) -> ConvGeometry:  # fmt: skip
    """Validate conv2d (NHWC input, HWIO kernel with I = C_in / groups)."""
    x_shape, k, b = tuple(int(d) for d in x_shape), tuple(int(d) for d in kernel_shape), tuple(bias_shape)
    msg = (f"x.shape={x_shape}, kernel.shape={k}, bias.shape={b}, stride={stride!r}, padding={padding!r}, "
           f"dilation={dilation!r}, groups={groups!r}")  # fmt: skip
    check_padding(padding) if isinstance(padding, str) else _explicit_pads(padding, msg)
    sh, sw = pair(stride, "stride")
    try:
        dh, dw = pair(dilation, "dilation")
    except ValueError as e:
        raise ShapeError(f"{e}: {msg}") from None
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ShapeError(f"groups must be an int >= 1: {msg}")
    if len(x_shape) != 4:
        raise ShapeError(f"conv2d input must be NHWC, rank 4; got rank {len(x_shape)}: {msg}")
    if len(k) != 4:
        raise ShapeError(f"conv2d kernel must be HWIO, rank 4; got rank {len(k)}: {msg}")
    B, H, W, C = x_shape
    KH, KW, CI, O = k
    if C % groups or O % groups:
        raise ShapeError(f"conv2d groups={groups} must divide the input channels {C} and output channels {O}: {msg}")
    if CI * groups != C:
        raise ShapeError(f"conv2d kernel.shape[2]={CI} must be input channels / groups = {C}/{groups}: {msg}")
    if b != (O,):
        raise ShapeError(f"conv2d bias must be (C_out,) = ({O},): {msg}")
    ekh, ekw = (KH - 1) * dh + 1, (KW - 1) * dw + 1
    pads, OH, OW = _pads_and_out(H, W, ekh, ekw, sh, sw, padding, msg)
    if min(B, H, W, C, KH, KW, O) < 1 or OH < 1 or OW < 1:
        raise ShapeError(f"conv2d (dilated) kernel {ekh}x{ekw} does not fit the padded input: {msg}")
    return ConvGeometry(B, H, W, C, KH, KW, O, (sh, sw), pads, OH, OW, (dh, dw), int(groups))


def check_count_include_pad(count_include_pad: Any) -> bool:
    """avg_pool2d's flag, never implied by a truthy value: True or False only."""
    if not isinstance(count_include_pad, (bool, np.bool_)):
        raise TypeError(f"count_include_pad must be True or False, got {count_include_pad!r}")
    return bool(count_include_pad)


class PoolGeometry(NamedTuple):
    """spec.check_pool2d's answer."""

    B: int
    H: int
    W: int
    C: int
    pool: tuple[int, int]
    stride: tuple[int, int]
    pads: tuple[int, int, int, int]  # top, bottom, left, right
    OH: int
    OW: int


def check_pool2d(x_shape, pool=2, stride=None, padding: Any = "valid", op: str = "max_pool2d") -> PoolGeometry:
    """Validate a 2-D pool (NHWC). stride None means stride = pool, as Keras and TensorFlow do."""
    x_shape = tuple(int(d) for d in x_shape)
    msg = f"x.shape={x_shape}, pool={pool!r}, stride={stride!r}, padding={padding!r}"
    check_padding(padding) if isinstance(padding, str) else _explicit_pads(padding, msg)
    ph, pw = pair(pool, "pool")
    sh, sw = pair(stride if stride is not None else (ph, pw), "stride")
    if len(x_shape) != 4:
        raise ShapeError(f"{op} input must be NHWC, rank 4; got rank {len(x_shape)}: {msg}")
    B, H, W, C = x_shape
    pads, OH, OW = _pads_and_out(H, W, ph, pw, sh, sw, padding, msg)
    t, b, l, r = pads
    if max(t, b) >= ph or max(l, r) >= pw:
        raise ShapeError(f"{op} pads must be smaller than the window (a window of padding only has no value): {msg}")
    if min(B, H, W, C) < 1 or OH < 1 or OW < 1:
        raise ShapeError(f"{op} window larger than the padded input: {msg}")
    return PoolGeometry(B, H, W, C, (ph, pw), (sh, sw), pads, OH, OW)
