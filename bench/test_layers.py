"""The LSTM and the bidirectional LSTM and GRU as one-layer model descriptions, in every voice: forward, and forward +
backward where the voice has gradients."""

from __future__ import annotations

from .groups import run_row


def test_layer(benchmark, layer_row, bench):
    run_row(benchmark, layer_row, bench)
