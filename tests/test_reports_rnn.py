"""The report's GRU-against-LSTM section: pairs each voice's LSTM row with its reset_after GRU row at one shape."""

from __future__ import annotations

import numpy as np
import pandas as pd

from reports import rnn_compare


def _row(work, impl, median, times, variant="", shape="B32 T100 I64 H128", precision="float32"):
    return {"work": work, "variant": variant, "impl": impl, "mode": "eager", "device": "cpu", "precision": precision,
            "pass": "fwd", "shape": shape, "t_median": median, "p_times": tuple(times)}


def test_pairs_same_voice_and_shape_only_and_brackets_the_ratio():
    g = np.random.default_rng(0)
    gru_t = 0.010 * (1 + 0.02 * g.standard_normal(40))
    lstm_t = 0.013 * (1 + 0.02 * g.standard_normal(40))
    df = pd.DataFrame([
        _row("gru", "torch", float(np.median(gru_t)), gru_t, "reset_after"),
        _row("gru", "torch", 0.5, gru_t, "chung"),  # another variant: never paired
        _row("lstm", "torch", float(np.median(lstm_t)), lstm_t),
        _row("lstm", "keras", 0.02, lstm_t),  # no GRU row of its own: left out
        _row("lstm", "torch", 0.02, lstm_t, shape="B1 T100 I64 H128"),  # another shape: left out
    ])
    cmp = rnn_compare.comparison(df)
    assert len(cmp) == 1 and cmp.iloc[0]["voice"] == "torch"
    ratio = float(cmp.iloc[0]["LSTM / GRU"])
    assert abs(ratio - 1.3) < 0.05
    lo, hi = (float(v) for v in cmp.iloc[0]["95% interval"].strip("[]").split(","))
    assert lo < ratio < hi and hi - lo < 0.1
    assert "GRU against LSTM" in "\n".join(rnn_compare.section(df))


def test_no_lstm_rows_no_section():
    df = pd.DataFrame([_row("gru", "torch", 0.01, [0.01] * 5, "reset_after")])
    assert rnn_compare.section(df) == []
