"""lrn: local response normalization across the channels (the canonical last axis) of a map (AlexNet, GoogLeNet).

    S_c = sum of x_i^2 over the window of `size` channels i in [c - before, c + after] (zeros past either end)
    y_c = x_c / (bias + alpha / size * S_c) ** beta

`alpha` is divided by `size` (ONNX's LRN and torch's nn.LocalResponseNorm both do; TensorFlow's
tf.nn.local_response_normalization does not: its alpha is this alpha / size). The window of an even size has one
channel more on one side: `extra` says which. "after" is ONNX's (before = floor((size - 1) / 2), after =
ceil((size - 1) / 2)); "before" is torch's (F.local_response_norm pads size // 2 channels before and (size - 1) // 2
after). For an odd size both are (size - 1) / 2 on each side. Reversing the channels turns one even window into the
other (a port's exact way to write the other framework's window with its own op).
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from ..errors import ModelError, ShapeError
from .base import LayerSpec, positive_int

EXTRAS = ("after", "before")


def window(size: int, extra: str) -> tuple[int, int]:
    """(channels before c, channels after c) in c's window."""
    small, big = (size - 1) // 2, size // 2
    return (small, big) if extra == "after" else (big, small)


def _number(name: str, v, low: float | None = None, open_low: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(float(v)) \
            or (low is not None and (float(v) <= low if open_low else float(v) < low)):  # fmt: skip
        bound = "" if low is None else f" {'>' if open_low else '>='} {low}"
        raise ModelError(f"lrn: option {name} must be a finite number{bound}, got {v!r}")
    return float(v)


def _window_sum(v: np.ndarray, lo: int, hi: int) -> np.ndarray:
    p = np.pad(v, [(0, 0)] * (v.ndim - 1) + [(lo, hi)])
    return np.lib.stride_tricks.sliding_window_view(p, lo + hi + 1, axis=-1).sum(axis=-1)


class LRN(LayerSpec):
    KIND = "lrn"
    OPS = ("lrn",)
    REQUIRED = ("size",)
    DEFAULTS: ClassVar[dict] = {"alpha": 1e-4, "beta": 0.75, "bias": 1.0, "extra": "after"}

    def validate(self, opts):
        opts["size"] = positive_int(self.KIND, "size", opts["size"])
        opts["alpha"] = _number("alpha", opts["alpha"], 0.0)
        opts["beta"] = _number("beta", opts["beta"])
        opts["bias"] = _number("bias", opts["bias"], 0.0, open_low=True)
        if opts["extra"] not in EXTRAS:
            raise ModelError(f"lrn: extra {opts['extra']!r} is not one of {EXTRAS} (where an even window's extra "
                             "channel lies: 'after' ONNX's LRN, 'before' torch's LocalResponseNorm)")  # fmt: skip
        if opts["size"] % 2:
            opts["extra"] = "after"  # an odd window is centred: one form
        return opts

    def output_shape(self, opts, in_shape):
        if len(in_shape) not in (3, 4):
            raise ShapeError(f"lrn normalises across the channels of a map (B, L, C) or (B, H, W, C), got {in_shape}")
        return in_shape

    def forward(self, ops, x, opts, w):
        before, _ = window(opts["size"], opts["extra"])
        return ops.lrn(x, opts["size"], opts["alpha"], opts["beta"], opts["bias"], before)

    def vjp(self, x, opts, w, dy):
        """dx_j = dy_j D_j^-beta - 2 beta alpha / size x_j sum over the c whose window holds j of dy_c x_c D_c^(-beta-1);
        those c are [j - after, j + before]: the window mirrored."""
        size, beta = opts["size"], opts["beta"]
        lo, hi = window(size, opts["extra"])
        k = opts["alpha"] / size
        d = opts["bias"] + k * _window_sum(x * x, lo, hi)
        t = dy * x * d ** (-beta - 1.0)
        return dy * d ** -beta - 2.0 * beta * k * x * _window_sum(t, hi, lo), {}


SPEC = LRN()

__all__ = ["EXTRAS", "SPEC", "window"]
