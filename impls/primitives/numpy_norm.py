"""The NumPy reference's local response normalization (issue 24's normalization family): the window sum of squares
across the channels (the last axis) as a zero-padded sliding-window view, then x / (bias + alpha / size * sum) ** beta.
Its backward is the lrn kind's hand-written vjp (impls/model/layers/lrn.py)."""

from __future__ import annotations

import numpy as np


def lrn(x: np.ndarray, size: int, alpha: float, beta: float, bias: float, before: int) -> np.ndarray:
    """Channels last; the window of channel c is [c - before, c - before + size - 1]."""
    x = np.asarray(x)
    p = np.pad(x * x, [(0, 0)] * (x.ndim - 1) + [(before, size - 1 - before)])
    s = np.lib.stride_tricks.sliding_window_view(p, size, axis=-1).sum(axis=-1)
    return x / (bias + alpha / size * s) ** beta


__all__ = ["lrn"]
