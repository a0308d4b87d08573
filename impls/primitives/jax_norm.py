"""JAX from primitives: local response normalization across the last (channel) axis, the window sum of squares by
lax.reduce_window with the window's zero padding."""

from __future__ import annotations

from typing import Any

import numpy as np

from .jax_core import jnp, lax


def lrn(x: Any, size: int, alpha: float, beta: float, bias: float, before: int) -> Any:
    nd = x.ndim
    s = lax.reduce_window(x * x, np.zeros((), x.dtype), lax.add, (1,) * (nd - 1) + (size,), (1,) * nd,
                          [(0, 0)] * (nd - 1) + [(before, size - 1 - before)])  # fmt: skip  (a concrete zero: a sum, differentiable)
    return x / jnp.power(bias + (alpha / size) * s, beta)


__all__ = ["lrn"]
