"""How the report writes numbers: times, ratios (with their 95% intervals), rates, shares, errors."""

from __future__ import annotations

import math

from bench import paired
from impls.contract.tolerance import CALIBRATED_FACTOR


def fmt_time(s: float) -> str:
    if s is None or not math.isfinite(s):
        return "—"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def fmt_ratio(x: float) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.2f}×" if x < 100 else f"{x:.0f}×"


def fmt_rate(x: float | None, scale: float = 1e9) -> str:
    if x is None or not (x > 0):
        return "—"
    v = x / scale
    return f"{v:.3g}" if v < 1000 else f"{v:.0f}"  # never "1e+03"


def fmt_pct(x: float | None) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{100 * x:.0f}%" if x >= 0.1 else f"{100 * x:.2g}%"


def fmt_err(row) -> str:
    """The measured error against float64; a row out of tolerance is marked FAIL, never hidden."""
    err, tol, ok = row["max_rel_err"], row["tolerance"], row["err_ok"]
    if err is None or (isinstance(err, float) and math.isnan(err)):
        note = row.get("err_note")
        return "not measured" + (f": {note}" if isinstance(note, str) and note else "")
    tol_s = f"{tol:.0e}" if isinstance(tol, (int, float)) else "?"
    cal = row.get("calibrated_tolerance")
    if isinstance(cal, (int, float)) and not math.isnan(cal):  # over the table's bar, judged by float32's own error
        tol_s = f"{cal:.1e} (calibrated: {tol_s} is below NumPy's own float32 error here, the bar is {CALIBRATED_FACTOR:g}x that)"
    if ok is False:
        return f"**FAIL** {err:.1e} > {tol_s}"
    if ok is None:
        return f"{err:.1e} (not judged)"
    return f"{err:.1e} ≤ {tol_s}"


def impl_label(row) -> str:
    same = not row["mode"] or row["mode"] == row["impl"]  # "numpy (numpy)" says nothing twice
    return str(row["impl"]) if same else f"{row['impl']} ({row['mode']})"


def fmt_ci(ci) -> str:
    lo, hi = ci
    f = lambda x: f"{x:.2f}" if x < 100 else f"{x:.0f}"
    return f"{f(lo)}–{f(hi)}"


def fmt_r(r: paired.Ratio | None) -> str:
    """'1.17× (1.12–1.22)'; without an interval (one block) just the ratio."""
    if r is None:
        return "—"
    return fmt_ratio(r.ratio) + (f" ({fmt_ci(r.ci95)})" if r.ci95 is not None else "")


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def row_ratio(row) -> paired.Ratio | None:
    """A report row's paired Ratio to its group's reference, None for a row timed before paired timing."""
    if not isinstance(row.get("p_lr"), tuple):
        return None
    ci = None if _missing(row.get("p_lo")) else (float(row["p_lo"]), float(row["p_hi"]))
    ep = row.get("p_epochs")
    return paired.Ratio(float(row["p_ratio"]), ci, row["p_lr"], ep if isinstance(ep, tuple) else None)


def ratio_cell(row) -> str:
    """The × fastest column: paired ratio and interval, 'reference' for the group's fastest,
    'indistinguishable' where the interval says so; an unpaired row's median ratio says 'unpaired'."""
    r = row_ratio(row)
    if r is None:
        return f"{fmt_ratio(row['ratio'])} (unpaired)"
    if row.get("p_ref") == row.get("id"):
        return "1.00× (reference)"
    return fmt_r(r) + (", indistinguishable" if r.indistinguishable else "")
