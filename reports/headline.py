"""The report's headline: whether the machine was busy (first), then per seed model the order of the
implementations with their ratios and 95% intervals, ties where the interval says indistinguishable, and
whether the fastest is correct."""

from __future__ import annotations

from collections import Counter

import pandas as pd

from . import ranking
from .fmt import fmt_r, fmt_time
from .load import Run
from .markdown import escape, table

SEED_MODELS = {"seed_gru_model": "seed GRU model", "seed_cnn_model": "seed CNN model"}
PREFER = {"pass": ("fwd", "fwd+bwd", "train_step"), "precision": ("float32", "float64"),
          "variant": ("reset_after", "", "reset_before")}  # fmt: skip


def _rank(h: dict) -> tuple:
    return tuple(PREFER[k].index(h[k]) if h[k] in PREFER[k] else len(PREFER[k]) for k in PREFER)


def contention_lines(runs: list[Run]) -> list[str]:
    """A line per contended run (bench/contention.py's verdict), and per run the groups timed while other
    processes were busy; nothing for a quiet run."""
    out = []
    for r in runs:
        v = r.contention
        if v is None:
            continue
        if v.get("contended"):
            out.append(f"- **Contended run: {escape(r.path)}** ({escape(r.label)}): {escape('; '.join(v['reasons']))}. "
                       "Its times and ratios describe a busy machine and may not hold on a quiet one.")  # fmt: skip
        busy = v.get("groups_contended") or []
        if busy:
            shown = ", ".join(busy[:5]) + (f" and {len(busy) - 5} more" if len(busy) > 5 else "")
            out.append(f"- {escape(r.path)}: {len(busy)} of {v.get('groups_timed', '?')} comparison groups were timed "
                       f"while other processes used the CPU: {escape(shown)}.")  # fmt: skip
    return out


def order(h: dict) -> str:
    """'[A, B] > C > D': fastest first, indistinguishable implementations bracketed together."""
    return " > ".join(c[0] if len(c) == 1 else "[" + ", ".join(c) + "]" for c in h["classes"])


def sentence(label: str, model: str, h: dict, verified: dict[str, Counter] | None) -> str:
    where = ", ".join(escape(x) for x in (h["pass"], h["device"], h["precision"], h["variant"], h["shape"]) if x)
    t, top = fmt_time(h["median"]), h["top"]
    s = f"- **{escape(label)}**, {model} ({where}): "
    if len(top) > 1:
        names = ", ".join(f"**{escape(x)}**" for x in top[:-1]) + f" and **{escape(top[-1])}**"
        s += (f"{names} are indistinguishable at the top ({escape(top[-1])} takes {fmt_r(h['tie'])} the time "
              f"of {escape(top[0])}, {t}), so no fastest is claimed")  # fmt: skip
        lead = f"; {escape(top[0])} is"
    else:
        s += f"**{escape(h['fastest'])}** is fastest at {t}"
        lead = ","
    if h["next"] is None and len(top) == 1:
        s += " (the only implementation measured)."
    elif h["next"] is None:
        s += "."
    else:
        s += f"{lead} {fmt_r(h['over_next'])} faster than the next, {escape(h['next'])}"
        if h["slowest"] != h["next"]:
            s += f", and {fmt_r(h['over_slowest'])} faster than the slowest, {escape(h['slowest'])}"
        s += f" ({h['n']} measured)."
    if not h["paired"]:
        s += " Unpaired run (timed before paired blocks): these ratios have no interval."
    if h["err_ok"] is True:
        s += f" Correct: **yes**, max relative error vs float64 {escape(h['err'])}."
    elif h["err_ok"] is False:
        s += f" Correct: **NO**, {escape(h['err'])}"
        if h["fastest_correct"]:
            s += (f"; the fastest correct one is {escape(h['fastest_correct'])} "
                  f"({fmt_r(h['fastest_correct_over'])} slower).")  # fmt: skip
        else:
            s += "; no implementation here was within tolerance."
    else:
        s += f" Correct: unknown ({escape(h['err'])})."
    others = [f for f in h["failed"] if f != h["fastest"]]
    if others:
        s += f" Out of tolerance as well: {escape(', '.join(others))}."
    if verified is not None:
        c = verified.get(h["impl"], Counter())
        s += (f" Verification suite for {escape(h['impl'])}: {c['passed']} passed, "
              f"{c['failed'] + c['error']} failed, {c['skipped']} skipped.")  # fmt: skip
    return s


def section(runs: list[Run], latest: list[tuple[str, pd.DataFrame]], verified: dict[str, Counter] | None) -> list[str]:
    out = ["## Headline", ""] + contention_lines(runs)
    recs = []
    for label, df in latest:
        for work, model in SEED_MODELS.items():
            hs = ranking.headline(df, work)
            if not hs:
                out.append(f"- **{escape(label)}**, {model}: not measured in this run.")
                continue
            by_device: dict[str, dict] = {}
            for h in hs:
                if h["device"] not in by_device or _rank(h) < _rank(by_device[h["device"]]):
                    by_device[h["device"]] = h
                recs.append({"machine": label, "model": model, "pass": h["pass"], "device": h["device"],
                             "precision": h["precision"], "variant": h["variant"] or "—", "shape": h["shape"],
                             "order, fastest first ([ties])": order(h), "fastest median": fmt_time(h["median"]),
                             "× over next (95% CI)": fmt_r(h["over_next"]) if h["next"] else "—",
                             "× over slowest (95% CI)": fmt_r(h["over_slowest"]) if h["slowest"] else "—",
                             "fastest correct?": ("yes" if h["err_ok"] is True else "**NO**" if h["err_ok"] is False
                                                  else "not measured"),
                             "out of tolerance": ", ".join(h["failed"]) or "none"})  # fmt: skip
            out += [sentence(label, model, h, verified) for h in by_device.values()]
    if recs:
        out += ["", ("Every seed-model measurement (seed sizes). Ratios are paired: the geometric mean of the "
                     "per-block ratios over the blocks of one comparison group, with a 95% t-interval; "
                     "implementations in brackets are indistinguishable (the interval of their ratio includes 1 "
                     "or lies within ±3%)."), "", table(pd.DataFrame(recs), escape_cells=True)]  # fmt: skip
    return out + [""]
