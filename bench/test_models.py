"""The seed's two models: forward, forward+backward (loss and every parameter's gradient), one Adam step."""

from __future__ import annotations

from .groups import run_row


def test_model(benchmark, model_row, bench):
    run_row(benchmark, model_row, bench)
