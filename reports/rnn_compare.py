"""The FAQ's GRU-against-LSTM question, measured: each voice's LSTM against its GRU at the same sizes.

The seed (section 6.1) says the GRU's structure is "more concise" than the LSTM's. The seed audit settles the
parameter and FLOP counts (verify/claims_gru.py: 3 gate blocks to 4, so the LSTM does 4/3 of the GRU's products);
this section puts the run's own times beside them: for every voice, mode, device, precision and pass that timed both
the GRU op (reset_after) and the LSTM layer at one shape, the LSTM's median over the GRU's, with a 95% bootstrap
interval over the two rows' per-block times (scipy.stats.bootstrap; the two rows are in different groups, so the
ratio is unpaired and its interval wider than a paired one).

The sequence task (issue 25, `seq_section`): the seed's GRU model, the same with LSTMs and a Transformer encoder of the
GRU's parameter count, timed in one comparison group (bench/seqtask.py), so each voice's LSTM / GRU and Transformer / GRU
are paired ratios from the shared blocks, with their t-intervals, and the section states the parameter counts.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from bench import paired, seqtask

from .fmt import fmt_r, fmt_time
from .markdown import table
from .ranking import _process_basis

FLOP_RATIO = 4 / 3  # impls/contract/formulas.py: lstm_matmul_flops / gru_matmul_flops at the same B, T, I, H
KEYS = ("impl", "mode", "device", "precision", "pass", "shape")


def _interval(a, b) -> tuple[float, float]:
    if a is None or b is None or len(a) < 3 or len(b) < 3:
        return math.nan, math.nan
    res = stats.bootstrap((np.asarray(a), np.asarray(b)), lambda x, y: np.median(x) / np.median(y),
                          vectorized=False, n_resamples=2000, random_state=0, method="percentile")
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def comparison(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (impl, mode, device, precision, pass, shape) with both a GRU (reset_after) and an LSTM row."""
    if df.empty or "work" not in df:
        return pd.DataFrame()
    gru = df[(df["work"] == "gru") & (df["variant"] == "reset_after")]
    lstm = df[df["work"] == "lstm"]
    both = gru.merge(lstm, on=list(KEYS), suffixes=("_gru", "_lstm"))
    rows = []
    for _, r in both.iterrows():
        lo, hi = _interval(r.get("p_times_lstm"), r.get("p_times_gru"))
        rows.append({"voice": r["impl"], "mode": r["mode"], "device": r["device"], "precision": r["precision"],
                     "pass": r["pass"], "shape": r["shape"], "GRU median": f"{r['t_median_gru'] * 1e3:.2f} ms",
                     "LSTM median": f"{r['t_median_lstm'] * 1e3:.2f} ms",
                     "LSTM / GRU": f"{r['t_median_lstm'] / r['t_median_gru']:.2f}",
                     "95% interval": "" if math.isnan(lo) else f"[{lo:.2f}, {hi:.2f}]",
                     "FLOP ratio": f"{FLOP_RATIO:.2f}"})
    return pd.DataFrame(rows)


def section(df: pd.DataFrame) -> list[str]:
    cmp = comparison(df)
    if cmp.empty:
        return []
    return ["## GRU against LSTM at the same sizes", "",
            ("The seed's FAQ (6.1) calls the GRU more concise than the LSTM: 3 gate blocks to 4, so the LSTM does 4/3 "
             "of the GRU's matrix products (seed audit, `gru-fewer-params-than-lstm`). Measured: each voice's LSTM "
             "layer (bench `lstm` rows, a one-layer description) over its GRU op (reset_after) at the same shape, "
             "medians, with a 95% bootstrap interval over both rows' per-block times (unpaired: the two are in "
             "different groups). A ratio under 4/3 means the LSTM's extra products cost less than their share "
             "(the per-step overhead dominates); over it, more."), "",
            table(cmp, escape_cells=True), ""]


# --------------------------------------------------------------------------- the sequence task: GRU, LSTM, Transformer

SEQ_KEYS = ("impl", "mode", "device", "precision", "pass", "shape")
ARCH_LABEL = {"gru": "GRU", "lstm": "LSTM", "transformer": "Transformer"}


def _over(a, b) -> tuple[paired.Ratio, bool]:
    """(a's time over b's, paired?): from the shared blocks (bench.paired.between on both rows' log-ratios to their
    group's reference) where both were timed in one group, else the ratio of medians without an interval."""
    la, lb = a.get("p_lr"), b.get("p_lr")
    if (isinstance(la, tuple) and isinstance(lb, tuple) and len(la) == len(lb) and a.get("p_group")
            and a.get("p_group") == b.get("p_group")):  # fmt: skip
        ep = a.get("p_epochs") if isinstance(a.get("p_epochs"), tuple) else None
        return paired.between(la, lb, ep, *_process_basis(a)), True
    return paired.Ratio(float(a["t_median"]) / float(b["t_median"]), None, ()), False


def seq_comparison(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (voice, mode, device, precision, pass, shape) of the sequence task with a GRU row: the LSTM's and the
    Transformer's time over the GRU's in that voice, paired, with the 95% interval."""
    if df.empty or "work" not in df:
        return pd.DataFrame()
    rows = df[df["work"] == seqtask.WORK]
    out = []
    for key, g in rows.groupby(list(SEQ_KEYS), sort=True):
        by = {r["variant"]: r for _, r in g.iterrows()}
        if "gru" not in by:
            continue
        rec = dict(zip(("voice", "mode", "device", "precision", "pass", "shape"), key, strict=True))
        rec["GRU median"] = fmt_time(by["gru"]["t_median"])
        for arch in seqtask.ARCHS[1:]:
            if arch not in by:
                rec[f"{ARCH_LABEL[arch]} / GRU"] = "—"
                continue
            r, is_paired = _over(by[arch], by["gru"])
            cell = fmt_r(r) + ("" if is_paired else " (unpaired)")
            rec[f"{ARCH_LABEL[arch]} / GRU"] = cell + (", indistinguishable" if is_paired and r.indistinguishable else "")
        out.append(rec)
    return pd.DataFrame(out)


def _counts(rows: pd.DataFrame) -> list[str]:
    """The architectures, their parameter counts as the run recorded them, and the Transformer's residual difference."""
    out = []
    for shape, g in rows.groupby("shape", sort=True):
        first = g.iloc[0]
        counts = first.get("params") if isinstance(first.get("params"), dict) else None
        sizes = tuple(first["sizes"].items()) if isinstance(first.get("sizes"), dict) else None
        words = seqtask.describe(sizes) if sizes else {}
        if not counts:
            continue
        gru = counts["gru"]
        lines = [f"At {shape}:", ""]
        for arch in seqtask.ARCHS:
            n = counts.get(arch)
            diff = "" if arch == "gru" or n is None else f", {n - gru:+,} ({(n - gru) / gru:+.3%}) against the GRU's"
            lines.append(f"- {ARCH_LABEL[arch]}: {n:,} parameters{diff}; {words.get(arch, '')}")
        flops = {r["variant"]: r["flops"] for _, r in g[g["pass"] == "fwd"].iterrows() if r.get("flops")}
        if "gru" in flops:
            lines.append("- forward FLOPs (matrix products, 2mnk) over the GRU's: " + ", ".join(
                f"{ARCH_LABEL[a]} {flops[a] / flops['gru']:.2f}" for a in seqtask.ARCHS[1:] if a in flops))
        out += lines + [""]
    return out


def seq_section(df: pd.DataFrame) -> list[str]:
    cmp = seq_comparison(df)
    if cmp.empty:
        return []
    rows = df[df["work"] == seqtask.WORK]
    return ["## The seed's sequence task: GRU, LSTM and a Transformer of the GRU's size", "",
            ("The seed's GRU model (section 4.1), the same model with LSTMs (the FAQ's question at the same units), and "
             "a Transformer encoder whose parameter count is the GRU model's (its FFN width solved from the "
             "descriptions; bench/seqtask.py), each one model description built by every voice; bench `seq_task` "
             "rows, forward and one Adam step. The three architectures are timed in one comparison group (the same "
             "interleaved blocks), so each ratio below is paired: that voice's architecture over its GRU, the "
             "geometric mean of the per-block ratios with its 95% t-interval (bench.paired.between), "
             "*indistinguishable* where the interval includes 1 or lies within ±3%. The tables above give each row "
             "against the fastest of all three architectures and voices."), "",
            *_counts(rows), table(cmp, escape_cells=True), ""]  # fmt: skip


__all__ = ["FLOP_RATIO", "comparison", "section", "seq_comparison", "seq_section"]
