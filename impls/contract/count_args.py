"""The sizes every count takes, validated alike (impls/contract/formulas.py's counts and the built-in voices' own).

Every size must be an int >= 1 (bool and float refused): bad input raises spec.ShapeError (a ValueError) naming the
argument and its value. Flags must be True or False, choices one of the valid names.
"""

from __future__ import annotations

import numpy as np

from .spec import ShapeError


def check_size(name: str, value: object, minimum: int = 1) -> int:
    """`value` as an int >= minimum. bool, float (even 3.0), str and None are refused, naming `name`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ShapeError(f"{name} must be an int >= {minimum}, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ShapeError(f"{name} must be an int >= {minimum}, got {name}={value!r}")
    return int(value)


def check_sizes(**named: object) -> list[int]:
    """Each named size as an int >= 1 (check_size), in order: the counts of every voice validate alike."""
    return [check_size(k, v) for k, v in named.items()]


def check_flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ShapeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return value


def check_choice(name: str, value: object, valid) -> str:
    if value not in valid:
        raise ShapeError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")
    return value  # type: ignore[return-value]
