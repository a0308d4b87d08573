"""The seed's two models: forward, forward+backward (loss and every parameter's gradient), one Adam step."""

from __future__ import annotations

from .harness import run_row


def test_model(benchmark, model_row, bench_opts):
    run_row(benchmark, model_row, bench_opts)
