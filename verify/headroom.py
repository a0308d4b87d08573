"""Each bar's headroom: the worst observed error against its bar, per dtype and voice, over a verify run.

Test bodies compare through `check` (impls.contract.tolerance.assert_close plus a note of the error); at the end
of the session verify/conftest.py writes one junit testsuite property per (dtype, voice),

    name  headroom|float32|tensorflow
    value {"worst": 4.1e-07, "bar": 2e-05, "ratio": 0.0205, "work": "gru", "test": "gru-tf-float32-...", "n": 812}

(`ratio` = worst / bar, the comparison that came closest to failing), which reports/verify_summary.py
reads into the report's verification section. pytest's record_testsuite_property is the xunit2-safe way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from impls.contract.tolerance import ErrorStats, assert_close, error_stats, tolerance

PREFIX = "headroom|"


@dataclass
class Worst:
    worst: float = 0.0
    bar: float = 0.0
    work: str = ""
    test: str = ""
    n: int = 0

    @property
    def ratio(self) -> float:
        return self.worst / self.bar if self.bar else float("inf")


BOOK: dict[tuple[str, str], Worst] = {}


def record(precision: str, impl: str, work: str | None, rel: float, bar: float, what: str) -> None:
    """Keep, per (precision, voice), the comparison with the largest error relative to its bar."""
    w = BOOK.setdefault((precision, impl), Worst())
    w.n += 1
    if w.n == 1 or rel / bar > w.ratio:
        w.worst, w.bar, w.work, w.test = float(rel), float(bar), work or "", what


def check(actual, expected, precision: str, impl: str, work: str | None = None, what: str = "") -> ErrorStats:
    """assert_close, after noting the error against the bar for the headroom table."""
    s = error_stats(actual, expected)
    record(precision, impl, work, s.rel, tolerance(precision, work), what)
    return assert_close(actual, expected, precision, work=work, what=what)


def dump() -> list[dict]:
    """The book as JSON-able rows: what an xdist worker hands the controller (verify/conftest.py)."""
    return [{"precision": p, "impl": i, **vars(w)} for (p, i), w in BOOK.items()]


def merge(rows: list[dict]) -> None:
    """Fold a worker's dump() into this process's book: counts add up, the closest call to its bar wins."""
    for r in rows:
        w = BOOK.setdefault((r["precision"], r["impl"]), Worst())
        other = Worst(r["worst"], r["bar"], r["work"], r["test"], r["n"])
        if w.n == 0 or other.ratio > w.ratio:
            w.worst, w.bar, w.work, w.test = other.worst, other.bar, other.work, other.test
        w.n += other.n


def properties() -> list[tuple[str, str]]:
    """(name, JSON value) per (precision, voice), sorted: what the session writes into the junit XML."""
    return [
        (f"{PREFIX}{p}|{impl}", json.dumps({"worst": w.worst, "bar": w.bar, "ratio": w.ratio, "work": w.work,
                                             "test": w.test, "n": w.n}))
        for (p, impl), w in sorted(BOOK.items())
    ]
