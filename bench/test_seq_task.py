"""The seed's sequence task three ways (bench/seqtask.py): its GRU model, the same with LSTMs, and a Transformer encoder
of the GRU's parameter count, forward in every voice and one Adam step where the voice has an optimiser; the three
architectures in one comparison group, so their ratios are paired (reports/rnn_compare.py)."""

from __future__ import annotations

from .groups import run_row


def test_seq_task(benchmark, seq_row, bench):
    run_row(benchmark, seq_row, bench)
