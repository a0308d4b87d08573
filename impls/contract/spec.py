"""Canonical layouts, GRU variants, weight containers and shape checks shared by every backend.

This module holds facts, not math: every backend computes on its own, and only asks this
module what the shapes must be and what the names mean. Nothing here imports a framework.

Layouts (the seed article's Keras layout):
    sequences   (B, T, F) batch first
    images      NHWC;  conv kernels HWIO;  dense kernels (in, out)
    GRU         W (I, 3H), U (H, 3H), b_x (3H,), b_h (3H,), gate order (z, r, h) on the last axis
    seed 1-D    x (B, L, C) channels last, w (K, C) taps by channel, b (C,)
Conv and pool geometry (groups, dilation, explicit padding) lives in impls/contract/conv_spec.py, re-exported here.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .conv_spec import (  # noqa: F401  (re-exported: the conv and pool geometry is part of the spec)
    PADDINGS,
    ConvGeometry,
    PoolGeometry,
    ShapeError,
    check_conv2d,
    check_count_include_pad,
    check_padding,
    check_pool2d,
    is_explicit,
    out_size,
    padding_label,
    pair,
    same_pads,
)

VARIANTS = ("seed", "reset_before", "reset_after", "chung")
"""GRU variants, see DESIGN.md. Never implied: every GRU call names one."""

GATES = ("z", "r", "h")
"""Canonical gate order along the last axis of W, U, b_x, b_h."""


def check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"unknown GRU variant {variant!r}; valid variants: {', '.join(VARIANTS)}")
    return variant


# --------------------------------------------------------------------------- weights


class _RecurrentWeights:
    """What GRU and LSTM weights share: (W, U, b_x, b_h), sizes read off W and U, and map."""

    @property
    def input_size(self) -> int:
        return int(self.W.shape[0])

    @property
    def hidden_size(self) -> int:
        return int(self.U.shape[0])

    def map(self, fn):
        return type(self)(**{f.name: fn(getattr(self, f.name)) for f in dataclasses.fields(self)})


@dataclass(frozen=True)
class GRUWeights(_RecurrentWeights):
    """Framework-neutral GRU weights, gate order (z, r, h). Fields may be NumPy or native arrays."""

    W: Any  # (I, 3H) input kernel
    U: Any  # (H, 3H) recurrent kernel
    b_x: Any  # (3H,) input bias
    b_h: Any  # (3H,) recurrent bias


@dataclass(frozen=True)
class LSTMWeights(_RecurrentWeights):
    """Framework-neutral LSTM weights, gate order (i, f, g, o) along the last axis: input, forget, cell candidate,
    output (Keras calls the candidate c, torch g; both store this order; ONNX stores (i, o, f, c)). Two biases, as
    torch keeps them; Keras' single bias is b_x with b_h = 0. Fields may be NumPy or native arrays."""

    W: Any  # (I, 4H) input kernel
    U: Any  # (H, 4H) recurrent kernel
    b_x: Any  # (4H,) input bias
    b_h: Any  # (4H,) recurrent bias


@dataclass(frozen=True)
class DenseWeights:
    kernel: Any  # (in, out)
    bias: Any  # (out,)

    def map(self, fn) -> DenseWeights:
        return DenseWeights(fn(self.kernel), fn(self.bias))


@dataclass(frozen=True)
class ConvWeights:
    kernel: Any  # (KH, KW, C_in, C_out) HWIO
    bias: Any  # (C_out,)

    def map(self, fn) -> ConvWeights:
        return ConvWeights(fn(self.kernel), fn(self.bias))


def _shape(a: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in a.shape)


def check_gru(x_shape, weights: GRUWeights, h0_shape=None) -> tuple[int, int, int, int]:
    """Validate a GRU call; returns (B, T, I, H). Every mismatch names all the shapes involved."""
    W, U, bx, bh = (_shape(weights.W), _shape(weights.U), _shape(weights.b_x), _shape(weights.b_h))
    x_shape = tuple(int(d) for d in x_shape)
    msg = f"x.shape={x_shape}, W.shape={W}, U.shape={U}, b_x.shape={bx}, b_h.shape={bh}" + (
        f", h0.shape={tuple(h0_shape)}" if h0_shape is not None else ""
    )
    if len(x_shape) != 3:
        raise ShapeError(f"GRU input must be (B, T, I), rank 3; got rank {len(x_shape)}: {msg}")
    if len(U) != 2 or U[1] != 3 * U[0]:
        raise ShapeError(f"GRU recurrent kernel U must be (H, 3H): {msg}")
    H = U[0]
    if len(W) != 2 or W[1] != 3 * H:
        raise ShapeError(f"GRU input kernel W must be (I, 3H) with H={H}: {msg}")
    if bx != (3 * H,) or bh != (3 * H,):
        raise ShapeError(f"GRU biases b_x and b_h must be (3H,) = ({3 * H},): {msg}")
    B, T, I = x_shape
    if I != W[0]:
        raise ShapeError(f"GRU input features x.shape[2]={I} != W.shape[0]={W[0]}: {msg}")
    if min(B, T, I, H) < 1:
        raise ShapeError(f"GRU sizes must be >= 1: {msg}")
    if h0_shape is not None and tuple(int(d) for d in h0_shape) != (B, H):
        raise ShapeError(f"GRU h0 must be (B, H) = ({B}, {H}): {msg}")
    return B, T, I, H


def check_dense(x_shape, kernel_shape, bias_shape) -> None:
    x_shape, k, b = tuple(x_shape), tuple(kernel_shape), tuple(bias_shape)
    msg = f"x.shape={x_shape}, kernel.shape={k}, bias.shape={b}"
    if len(x_shape) < 1 or len(k) != 2:
        raise ShapeError(f"dense needs x (..., in) and kernel (in, out): {msg}")
    if x_shape[-1] != k[0]:
        raise ShapeError(f"dense x.shape[-1]={x_shape[-1]} != kernel.shape[0]={k[0]}: {msg}")
    if b != (k[1],):
        raise ShapeError(f"dense bias must be (out,) = ({k[1]},): {msg}")


def check_seed_conv1d(x_shape, w_shape, b_shape) -> tuple[int, int, int, int]:
    """Seed section 2.2, y_ij = sum_k w_ik x_i,j+k-1 + b_i, channels last. Returns (B, L, C, K)."""
    x_shape, w, b = tuple(int(d) for d in x_shape), tuple(int(d) for d in w_shape), tuple(b_shape)
    msg = f"x.shape={x_shape}, w.shape={w}, b.shape={b}"
    if len(x_shape) != 3:
        raise ShapeError(f"seed_conv1d input must be (B, L, C), rank 3; got rank {len(x_shape)}: {msg}")
    if len(w) != 2 or w[1] != x_shape[2]:
        raise ShapeError(f"seed_conv1d w must be (K, C) with C = x.shape[2] = {x_shape[2]}: {msg}")
    if b != (x_shape[2],):
        raise ShapeError(f"seed_conv1d b must be (C,) = ({x_shape[2]},): {msg}")
    if w[0] > x_shape[1] or w[0] < 1:
        raise ShapeError(f"seed_conv1d needs 1 <= K <= L: {msg}")
    return x_shape[0], x_shape[1], x_shape[2], w[0]


def check_seed_pool1d(y_shape) -> tuple[int, int, int]:
    y_shape = tuple(int(d) for d in y_shape)
    if len(y_shape) != 3 or y_shape[1] < 2:
        raise ShapeError(f"seed_pool1d input must be (B, L, C) with L >= 2; got y.shape={y_shape}")
    return y_shape


def check_lstm(x_shape, weights: LSTMWeights, h0_shape=None, c0_shape=None) -> tuple[int, int, int, int]:
    """Validate an LSTM call; returns (B, T, I, H). Every mismatch names all the shapes involved."""
    W, U, bx, bh = (_shape(weights.W), _shape(weights.U), _shape(weights.b_x), _shape(weights.b_h))
    x_shape = tuple(int(d) for d in x_shape)
    msg = f"x.shape={x_shape}, W.shape={W}, U.shape={U}, b_x.shape={bx}, b_h.shape={bh}"
    if len(x_shape) != 3:
        raise ShapeError(f"LSTM input must be (B, T, I), rank 3; got rank {len(x_shape)}: {msg}")
    if len(U) != 2 or U[1] != 4 * U[0]:
        raise ShapeError(f"LSTM recurrent kernel U must be (H, 4H): {msg}")
    H = U[0]
    if len(W) != 2 or W[1] != 4 * H:
        raise ShapeError(f"LSTM input kernel W must be (I, 4H) with H={H}: {msg}")
    if bx != (4 * H,) or bh != (4 * H,):
        raise ShapeError(f"LSTM biases b_x and b_h must be (4H,) = ({4 * H},): {msg}")
    B, T, I = x_shape
    if I != W[0]:
        raise ShapeError(f"LSTM input features x.shape[2]={I} != W.shape[0]={W[0]}: {msg}")
    if min(B, T, I, H) < 1:
        raise ShapeError(f"LSTM sizes must be >= 1: {msg}")
    for name, s0 in (("h0", h0_shape), ("c0", c0_shape)):
        if s0 is not None and tuple(int(d) for d in s0) != (B, H):
            raise ShapeError(f"LSTM {name} must be (B, H) = ({B}, {H}), got {tuple(s0)}: {msg}")
    return B, T, I, H


def check_gru_vjp(x, weights: GRUWeights, h0, dy, dh_T) -> tuple[int, int, int, int]:
    """Validate a gru_vjp call (arrays of any backend, or None): the forward's shapes, then the
    cotangents, at least one of dy (B, T, H) and dh_T (B, H). Returns (B, T, I, H)."""
    B, T, I, H = check_gru(x.shape, weights, None if h0 is None else h0.shape)
    if dy is None and dh_T is None:
        raise ValueError("gru_vjp needs dy, dh_T or both; got neither (dy=None, dh_T=None)")
    if dy is not None:
        check_dy("gru_vjp", dy.shape, (B, T, H))
    if dh_T is not None:
        check_dy("gru_vjp (dh_T)", dh_T.shape, (B, H))
    return B, T, I, H


def check_dy(name: str, dy_shape, expected_shape) -> None:
    """A cotangent must have exactly the output's shape: no silent broadcasting."""
    dy_shape, expected_shape = tuple(int(d) for d in dy_shape), tuple(int(d) for d in expected_shape)
    if dy_shape != expected_shape:
        raise ShapeError(f"{name}: dy.shape={dy_shape} does not match the output shape {expected_shape}")


# --------------------------------------------------------------------------- seeded initialisation


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def init_gru(input_size: int, hidden_size: int, seed: int = 0, dtype="float64", scale=None) -> GRUWeights:
    """Random canonical GRU weights. Each block gets its own scale and a non-zero mean offset, so a
    swapped gate, a missing transpose or b_x/b_h confusion changes the outputs visibly."""
    g = rng(seed)
    s = scale if scale is not None else 1.0 / math.sqrt(hidden_size)
    I, H = input_size, hidden_size

    def blocks(rows):  # (rows, 3H): gate blocks z, r, h with distinct offsets
        return np.concatenate(
            [g.uniform(-s, s, (rows, H)) + off * s for off in (0.10, -0.20, 0.05)], axis=1
        )

    return GRUWeights(
        W=blocks(I).astype(dtype),
        U=blocks(H).astype(dtype),
        b_x=g.uniform(-s, s, 3 * H).astype(dtype),
        b_h=g.uniform(-s, s, 3 * H).astype(dtype),
    )


def init_lstm(input_size: int, hidden_size: int, seed: int = 0, dtype="float64", scale=None) -> LSTMWeights:
    """Random canonical LSTM weights, each gate block with its own non-zero mean offset (a swapped gate shows)."""
    g = rng(seed)
    s = scale if scale is not None else 1.0 / math.sqrt(hidden_size)
    H = hidden_size

    def blocks(rows):  # (rows, 4H): gate blocks i, f, g, o
        return np.concatenate([g.uniform(-s, s, (rows, H)) + off * s for off in (0.10, 0.30, -0.20, 0.05)], axis=1)

    return LSTMWeights(W=blocks(input_size).astype(dtype), U=blocks(H).astype(dtype),
                       b_x=g.uniform(-s, s, 4 * H).astype(dtype), b_h=g.uniform(-s, s, 4 * H).astype(dtype))


def init_dense(n_in: int, n_out: int, seed: int = 0, dtype="float64") -> DenseWeights:
    g = rng(seed)
    lim = math.sqrt(6.0 / (n_in + n_out))  # Glorot uniform, as Keras initialises Dense
    return DenseWeights(
        g.uniform(-lim, lim, (n_in, n_out)).astype(dtype), g.uniform(-0.1, 0.1, n_out).astype(dtype)
    )


def init_conv(kh: int, kw: int, c_in: int, c_out: int, seed: int = 0, dtype="float64", groups: int = 1) -> ConvWeights:
    """HWIO kernel (kh, kw, c_in / groups, c_out) and a bias of distinct non-zero values."""
    g = rng(seed)
    lim = math.sqrt(6.0 / (kh * kw * (c_in + c_out) / groups))
    return ConvWeights(
        g.uniform(-lim, lim, (kh, kw, c_in // groups, c_out)).astype(dtype), g.uniform(-0.1, 0.1, c_out).astype(dtype)
    )


def random_array(shape, seed: int = 0, dtype="float64", low=-1.0, high=1.0) -> np.ndarray:
    return rng(seed).uniform(low, high, shape).astype(dtype)
