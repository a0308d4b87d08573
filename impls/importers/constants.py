"""What every importer reads the same way when a tensor meets a constant (issue 24: x + 3, x * (1 / 6), a per-channel
scale, a layer scale): the constant broadcast against the tensor as its framework holds it, read as one number or
one value per channel, and the rescale a constant operation makes.

    k = per_channel(np.ones((4, 1, 1)), (3, 4, 5, 5), channel_axis=1)   # torch's (C, 1, 1) on NCHW: 4 values
    opts = affine("sub", k, reverse=False)                              # {"scale": 1.0, "offset": [...]}

Each importer says which of the tensor's axes holds the description's channels (torch by its layout bookkeeping, ONNX
by its value's axes, Keras always the last); nothing here imports a framework.
"""

from __future__ import annotations

import numpy as np

OPS = ("add", "sub", "mul", "div")


def per_channel(k: np.ndarray, shape: tuple[int, ...], channel_axis: int | None) -> np.ndarray | None:
    """The constant `k` broadcast against a tensor of `shape` (as its framework holds it): a 0-d array where k is one
    value, a (C,) array where k varies along `channel_axis` only (the axis holding the description's channels, or
    None where none does, a flattened channels-first map), else None: k varies along another axis, has more axes,
    or would broadcast the tensor to a larger shape (the batch included)."""
    k = np.asarray(k)
    rank = len(shape)
    if k.ndim > rank:
        return None
    k = k.reshape((1,) * (rank - k.ndim) + k.shape)
    if any(n not in (1, m) for n, m in zip(k.shape, shape, strict=True)):
        return None
    if k.size == 1:
        return k.reshape(())
    if channel_axis is None or [a for a, n in enumerate(k.shape) if n != 1] != [channel_axis % rank]:
        return None
    return k.reshape(-1)


def as_option(k: np.ndarray) -> float | list[float]:
    """A per_channel answer as a rescale option: a number, or a list of one per channel."""
    k = np.asarray(k, np.float64)
    return float(k) if k.ndim == 0 else [float(v) for v in k]


def affine(op: str, k: np.ndarray, reverse: bool = False) -> dict | str:
    """The rescale options {scale, offset} of `x op k` (`k op x` where `reverse`), k a per_channel answer; or why it
    is no rescale (a reciprocal k / x, a division by zero)."""
    k = np.asarray(k, np.float64)
    if op == "add":
        return {"scale": 1.0, "offset": as_option(k)}
    if op == "sub":
        return {"scale": -1.0, "offset": as_option(k)} if reverse else {"scale": 1.0, "offset": as_option(-k)}
    if op == "mul":
        return {"scale": as_option(k), "offset": 0.0}
    if op == "div":
        if reverse:
            return "it divides a constant by the tensor (a reciprocal, not x * scale + offset)"
        if np.any(k == 0):
            return "it divides by zero"
        return {"scale": as_option(1.0 / k), "offset": 0.0}
    raise ValueError(f"affine: op {op!r} is not one of {OPS}")


__all__ = ["OPS", "affine", "as_option", "per_channel"]
