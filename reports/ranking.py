"""Ratios as the report states them: each with its 95% interval, ties where the interval says so.

Rows timed in a comparison group carry their paired ratio to the group's fastest and its interval
(extra_info["paired"], bench/groups.py); every statistic here comes from bench/paired.py (scipy.stats).
A ratio reads "1.17× (1.12–1.22)"; two implementations whose ratio's interval includes 1 or lies within
±3% read *indistinguishable*, and the headline never calls one of them fastest. Runs made before paired
timing have no interval: their ratios are medians over medians, and say "unpaired".
"""

from __future__ import annotations

import pandas as pd

from bench import paired

from .fmt import fmt_err, fmt_r, fmt_time, impl_label
from .load import KEY, Run

HEADLINE_GROUP = ("pass", "device", "precision", "variant", "shape")


# --------------------------------------------------------------------------- headline


def headline(df: pd.DataFrame, work: str) -> list[dict]:
    """For one machine's enriched rows and one seed model, per (pass, device, precision, variant, shape):
    the order with ties (paired rows) or by median (unpaired), the lead over the next distinguishable
    implementation and over the slowest, with intervals, and correctness."""
    rows = df[df["work"] == work]
    if (rows["sweep"] == "seed").any():
        rows = rows[rows["sweep"] == "seed"]
    return [_group(key, g) for key, g in rows.groupby(list(HEADLINE_GROUP), sort=True, dropna=False)]


def _group(key: tuple, g: pd.DataFrame) -> dict:
    g = g.sort_values(["ratio", "t_median"])
    g = g.set_axis([impl_label(r) for _, r in g.iterrows()])
    lr = {lab: g.at[lab, "p_lr"] for lab in g.index}
    # paired: every row from one group's blocks (same reference and block count), else medians only
    is_paired = (all(isinstance(v, tuple) for v in lr.values()) and g["p_ref"].nunique() == 1
                 and len({len(v) for v in lr.values()}) == 1)  # fmt: skip
    ep = g["p_epochs"].iloc[0] if is_paired and "p_epochs" in g and isinstance(g["p_epochs"].iloc[0], tuple) else None
    basis = (ep, *_process_basis(g.iloc[0])) if is_paired else (None, None, None)
    classes = paired.tie_classes(lr, *basis) if is_paired else [[lab] for lab in g.index]
    g = g.loc[[lab for c in classes for lab in c]]
    labels, first, top = list(g.index), g.iloc[0], classes[0]
    nxt = classes[1][0] if len(classes) > 1 else None

    def rel(a: str) -> paired.Ratio:  # a over the first
        if is_paired:
            return paired.between(lr[a], lr[labels[0]], *basis)
        return paired.Ratio(g.at[a, "t_median"] / first["t_median"], None, ())

    correct = [lab for lab in labels if g.at[lab, "err_ok"] is True]
    return {
        "pass": key[0], "device": key[1], "precision": key[2], "variant": key[3], "shape": key[4],
        "n": len(g), "paired": is_paired, "classes": classes, "top": top, "fastest": labels[0],
        "median": first["t_median"], "err": fmt_err(first), "err_ok": first["err_ok"], "impl": first["impl"],
        "tie": rel(top[-1]) if len(top) > 1 else None,
        "next": nxt, "over_next": rel(nxt) if nxt else None,
        "slowest": labels[-1] if len(g) > 1 else None, "over_slowest": rel(labels[-1]) if len(g) > 1 else None,
        "failed": [lab for lab in labels if g.at[lab, "err_ok"] is False],
        "fastest_correct": correct[0] if correct else None,
        "fastest_correct_over": rel(correct[0]) if correct else None,
    }  # fmt: skip


# --------------------------------------------------------------------------- two runs of one machine


def compare(old: Run, new: Run) -> tuple[pd.DataFrame, dict[str, int]]:
    """Rows of two runs of one machine side by side, judged by tests, not a fixed percentage:
    - relative speed: the row's ratio to the old run's group reference in each run (the new run rebased on
      it), agreeing when |log r1 - log r2| <= 1.96 sqrt(se1^2 + se2^2) (bench.paired.agree);
    - absolute speed: Mann-Whitney U on the two runs' per-block times, moved when p < 0.002 and more than
      10% apart (asv's rule; bench.paired.shift).
    Rows without paired data (runs before paired timing) are counted, not judged."""
    key = list(KEY)
    cols = key + ["id", "t_median", "err_ok", "p_group", "p_ref", "p_lr", "p_epochs", "p_times"]
    cols += [c for c in ("p_processes", "p_model") if c in old.rows and c in new.rows]
    m = old.rows[cols].merge(new.rows[cols], on=key, how="outer", suffixes=("_old", "_new"), indicator=True)
    both = m[m["_merge"] == "both"].sort_values(key).reset_index(drop=True)
    counts = {"agree": 0, "differ": 0, "reference": 0, "faster": 0, "slower": 0, "unchanged": 0, "unpaired": 0,
              "only old": int((m["_merge"] == "left_only").sum()), "only new": int((m["_merge"] == "right_only").sum())}  # fmt: skip
    rebased = _rebased(both)
    recs = []
    for i, r in both.iterrows():
        rec = {"work": r["work"], "pass": r["pass"], "variant": r["variant"], "device": r["device"],
               "precision": r["precision"], "shape": r["shape"], "implementation": r["impl"], "mode": r["mode"]}  # fmt: skip
        pair = rebased.get(i)
        if pair is None:
            counts["unpaired"] += 1
            rec |= {"old × reference": "unpaired", "new × reference": "unpaired", "ratio": "not judged",
                    "old median": fmt_time(r["t_median_old"]), "new median": fmt_time(r["t_median_new"]),
                    "raw time": "not judged"}  # fmt: skip
        else:
            r_old, r_new, is_ref = pair
            if is_ref:
                counts["reference"] += 1
                verdict = "reference"
            else:
                ok = paired.agree(r_old, r_new)
                counts["agree" if ok else "differ"] += 1
                verdict = "agrees" if ok else "**differs**"
            s = paired.shift(r["p_times_old"], r["p_times_new"])
            moved = ("faster" if s.ratio < 1 else "slower") if s.changed else "unchanged"
            counts[moved] += 1
            rec |= {"old × reference": "reference" if is_ref else fmt_r(r_old),
                    "new × reference": "reference" if is_ref else fmt_r(r_new), "ratio": verdict,
                    "old median": fmt_time(r["t_median_old"]), "new median": fmt_time(r["t_median_new"]),
                    "raw time": f"×{s.ratio:.2f}, p {s.p:.1g}" + (f": **{moved}**" if s.changed else "")}  # fmt: skip
        rec["new error"] = "**FAIL**" if r["err_ok_new"] is False else ""
        recs.append(rec)
    return pd.DataFrame(recs), counts


def _process_basis(row, suffix: str = "") -> tuple:
    """(the worker process of every block, the run's two-level model) where the run timed in worker processes
    (issue 19), else (None, None): the intervals the run itself recorded, at the process level."""
    procs, model = row.get("p_processes" + suffix), row.get("p_model" + suffix)
    return (procs if isinstance(procs, tuple) else None,
            paired.Model.from_dict(model) if isinstance(model, dict) else None)


def _rebased(both: pd.DataFrame) -> dict[int, tuple[paired.Ratio, paired.Ratio, bool]]:
    """Row index -> (ratio in the old run, in the new, is the old reference), both on the old run's reference."""
    out = {}
    ok = both["p_lr_old"].map(lambda v: isinstance(v, tuple)) & both["p_lr_new"].map(lambda v: isinstance(v, tuple))
    for _, g in both[ok & both["p_times_old"].notna() & both["p_times_new"].notna()].groupby("p_group_old"):
        ref = g["p_ref_old"].iloc[0]
        if ref not in set(g["id_old"]):
            continue
        ep = [e if isinstance(e, tuple) else None for e in (g["p_epochs_old"].iloc[0], g["p_epochs_new"].iloc[0])]
        first = g.iloc[0]
        r_old = paired.rebase(dict(zip(g["id_old"], g["p_lr_old"])), ref, ep[0], *_process_basis(first, "_old"))
        r_new = paired.rebase(dict(zip(g["id_old"], g["p_lr_new"])), ref, ep[1], *_process_basis(first, "_new"))
        for i, k in zip(g.index, g["id_old"]):
            out[i] = (r_old[k], r_new[k], k == ref)
    return out
