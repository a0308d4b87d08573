"""One comparison, one guarded call, and where the time went: what every section of the certificate uses.

    c = compare(y, ref, "float32")            # {error, bar, pass, max_abs, worst_index}
    value, problem = attempt(fn, *args)       # problem: {"refused" | "unavailable" | "error": why} or None
    with profile.section("torch_nn", "build"): ...   # --profile: seconds per voice and section
"""

from __future__ import annotations

import contextlib
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from impls.contract import limits
from impls.contract.tolerance import error_stats, tolerance


def compare(actual: Any, expected: np.ndarray, precision: str, work: str | None = None) -> dict[str, Any]:
    """{error, bar, pass, max_abs, worst_index}: the normwise relative error against the table's bar."""
    bar = tolerance(precision, work)
    try:
        s = error_stats(actual, expected)
    except AssertionError as e:  # a wrong shape is a failed check, said as such
        return {"error": float("inf"), "bar": bar, "pass": False, "problem": str(e)}
    return {"error": s.rel, "bar": bar, "pass": bool(s.rel <= bar), "max_abs": s.max_abs,
            "worst_index": list(s.worst_index), **({"work": work} if work else {})}  # fmt: skip


def why(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}".rstrip(": ")


def attempt(fn: Callable[..., Any], *args: Any) -> tuple[Any, dict[str, str] | None]:
    """(fn(*args), None), or (None, {"refused" | "unavailable" | "error": why}) where fn declared a refusal, could not
    load its framework or module, or raised (a bug: its last frame is kept)."""
    try:
        return fn(*args), None
    except limits.Refused as e:
        return None, {"refused": str(e)}
    except ImportError as e:
        return None, {"unavailable": why(e)}
    except Exception as e:  # noqa: BLE001 - a voice that raises fails its check; the certificate says where
        where = traceback.extract_tb(e.__traceback__)[-1]
        return None, {"error": f"{why(e)} (at {where.filename}:{where.lineno})"}


class Profile:
    """Wall seconds per (who, section): the voices' build, forward, layers, gradients; the reference, the training
    step, the source model. `nnparity certify --profile` prints it; the certificate keeps it (times differ run to
    run, nothing else does)."""

    def __init__(self) -> None:
        self.seconds: dict[str, dict[str, float]] = {}

    @contextlib.contextmanager
    def section(self, who: str, what: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(who, what, time.perf_counter() - t0)

    def add(self, who: str, what: str, seconds: float) -> None:
        row = self.seconds.setdefault(who, {})
        row[what] = row.get(what, 0.0) + seconds

    def table(self) -> str:
        """A plain-text table, sections as columns, the slowest rows first."""
        cols = sorted({c for row in self.seconds.values() for c in row})
        rows = sorted(self.seconds.items(), key=lambda kv: -sum(kv[1].values()))
        head = f"{'':<14}" + "".join(f"{c:>12}" for c in cols) + f"{'total':>10}"
        lines = [head] + [f"{who:<14}" + "".join(f"{row.get(c, 0.0):>12.1f}" for c in cols) + f"{sum(row.values()):>10.1f}"
                          for who, row in rows]  # fmt: skip
        return "\n".join(lines)


__all__ = ["Profile", "attempt", "compare", "why"]
