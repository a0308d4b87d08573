"""The FAQ's GRU-against-LSTM question, measured: each voice's LSTM against its GRU at the same sizes.

The seed (section 6.1) says the GRU's structure is "more concise" than the LSTM's. The seed audit settles the
parameter and FLOP counts (verify/claims_gru.py: 3 gate blocks to 4, so the LSTM does 4/3 of the GRU's products);
this section puts the run's own times beside them: for every voice, mode, device, precision and pass that timed both
the GRU op (reset_after) and the LSTM layer at one shape, the LSTM's median over the GRU's, with a 95% bootstrap
interval over the two rows' per-block times (scipy.stats.bootstrap; the two rows are in different groups, so the
ratio is unpaired and its interval wider than a paired one).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from .markdown import table

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


__all__ = ["FLOP_RATIO", "comparison", "section"]
