"""Seeded NumPy inputs on their way to an implementation, shared by verify/ and bench/.

Inputs are nested: arrays, weight dataclasses (their `.map`), dicts of either. `to_native` moves them
into a backend's arrays; `round_to` gives them as the backend holds them in a dtype, back in float64,
so the float64 reference computes on exactly the same numbers and input rounding is not counted as error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np


def map_arrays(obj: Any, fn: Callable[[np.ndarray], Any]) -> Any:
    """Apply fn to every array in obj (arrays, weight dataclasses, dicts); leave anything else as is."""
    if isinstance(obj, np.ndarray):
        return fn(obj)
    if dataclasses.is_dataclass(obj):
        return obj.map(lambda a: fn(np.asarray(a)))
    if isinstance(obj, dict):
        return {k: map_arrays(v, fn) for k, v in obj.items()}
    return obj


def round_mantissa(a: np.ndarray, bits: int) -> np.ndarray:
    """float64 -> float32 with `bits` fraction bits kept (round to nearest even) -> float64: bfloat16 is 7
    bits, TF32 10 (the float32 exponent range of both). As torch and TensorFlow cast: via float32."""
    drop = 23 - bits
    b = np.asarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    b = (b + ((1 << (drop - 1)) - 1) + ((b >> drop) & 1)) & (0xFFFFFFFF ^ ((1 << drop) - 1))
    return b.astype(np.uint32).view(np.float32).astype(np.float64)


def round_bf16(a: np.ndarray) -> np.ndarray:
    """float64 -> bfloat16 -> float64, as torch and TensorFlow cast: via float32, round to nearest even."""
    return round_mantissa(a, 7)


def round_to(obj: Any, dtype: str) -> Any:
    """Inputs as an implementation holds them in `dtype`, back in float64."""
    if dtype == "bfloat16":
        return map_arrays(obj, round_bf16)
    return map_arrays(obj, lambda a: a.astype(dtype).astype(np.float64))


def to_native(mod: ModuleType, obj: Any, dtype: str, device: str | None = None) -> Any:
    """Inputs as `mod`'s own arrays of `dtype` on `device`."""
    return map_arrays(obj, lambda a: mod.asarray(a, dtype, device))
