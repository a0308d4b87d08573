"""Single layers: every GRU variant, conv2d, max_pool2d and dense, forward and forward+backward."""

from __future__ import annotations

from .groups import run_row


def test_op(benchmark, op_row, bench):
    run_row(benchmark, op_row, bench)
