"""The GPU timing check: each cuda row's harness median against the CUDA events recorded around the
same calls (bench/harness.py records them for calls of 0.5 ms or more). The issue's bar: within 5% for
calls of 1 ms or more."""

from __future__ import annotations

import math

import pandas as pd

from .fmt import fmt_ratio, fmt_time
from .markdown import escape, table

BAR = 0.05
MIN_S = 1e-3
BINS = ((5e-4, 1e-3), (1e-3, 2e-3), (2e-3, 5e-3), (5e-3, math.inf))


def _span(lo: float, hi: float) -> str:
    return f"{fmt_time(lo)} and more" if math.isinf(hi) else f"{fmt_time(lo)} – {fmt_time(hi)}"


def _signed(s: float) -> str:
    return ("−" if s < 0 else "") + fmt_time(abs(s))


def section(rows: pd.DataFrame, overhead: pd.DataFrame) -> list[str]:
    """Markdown lines; empty when no row has CUDA events (a CPU-only run)."""
    if "cuda_event_median_s" not in rows:
        return []
    ev = rows[rows["cuda_event_median_s"].notna()].copy()
    if ev.empty:
        return []
    # an earlier harness timed a second window of calls with events (no cuda_event_rounds): not the same calls
    apart = ev[ev["cuda_event_rounds"].isna()] if "cuda_event_rounds" in ev else ev.iloc[:0]
    ev = ev.drop(apart.index)
    ev["ratio_ev"] = ev["t_median"] / ev["cuda_event_median_s"]
    ev["diff"] = ev["t_median"] - ev["cuda_event_median_s"]
    ev["ok"] = (ev["ratio_ev"] - 1.0).abs() <= BAR
    bar = ev[ev["t_median"] >= MIN_S]
    recs = []
    for lo, hi in BINS:
        b = ev[(ev["t_median"] >= lo) & (ev["t_median"] < hi)]
        if b.empty:
            continue
        recs.append({"harness median": _span(lo, hi), "rows": str(len(b)), "within 5%": str(int(b["ok"].sum())),
                     "ratio harness / events": f"{b['ratio_ev'].min():.3f} – {b['ratio_ev'].max():.3f}",
                     "median of harness − events": _signed(float(b["diff"].median()))})  # fmt: skip
    if ev.empty:
        return ["## GPU timing: the harness against CUDA events", "",
                (f"{len(apart)} rows carry CUDA events from a separate window of calls (an earlier harness), "
                 "not from the timed calls themselves: not compared."), ""]  # fmt: skip
    out = ["## GPU timing: the harness against CUDA events", "",
           (f"Every cuda row of 0.5 ms or more recorded CUDA events around the same calls the harness timed. "
            f"Bar: the medians agree within {BAR:.0%} for calls of {fmt_time(MIN_S)} or more. "
            f"Here **{int(bar['ok'].sum())} of {len(bar)}** such rows agree."), "",
           table(pd.DataFrame(recs)), ]  # fmt: skip
    if not apart.empty:
        out += [(f"Not counted: {len(apart)} rows whose events were timed in a separate window after the "
                 "harness's rounds (an earlier harness; the rows' runs predate events on the same calls)."), ""]  # fmt: skip
    off = bar[~bar["ok"]].sort_values("t_median")
    if not off.empty:
        out += ["Rows of 1 ms or more outside 5%:", "",
                table(pd.DataFrame({"row": off["id"].fillna(off["name"]),
                                    "harness": off["t_median"].map(fmt_time),
                                    "CUDA events": off["cuda_event_median_s"].map(fmt_time),
                                    "ratio": off["ratio_ev"].map(fmt_ratio),
                                    "difference": off["diff"].map(_signed)}), escape_cells=True)]  # fmt: skip
    if not overhead.empty:
        overhead = overhead.drop_duplicates(["impl", "device"], keep="last")
        cells = ", ".join(f"{escape(r['impl'])} on {escape(r['device'])} {fmt_time(r['t_median'])}"
                          for _, r in overhead.iterrows())  # fmt: skip
        out += [f"The harness's own cost per call (an empty callable plus the rows' synchronize): {cells}.", ""]
    return out
