"""What the machine can do, measured in the same run: a large matmul per precision and a memory copy per
device (kind "ceiling"), and an empty callable + synchronize per framework (the harness's own overhead).
Each is timed alone, in blocks like the rows (a group of one)."""

from __future__ import annotations

from .groups import run_ceiling


def test_ceiling(benchmark, ceiling, bench):
    run_ceiling(benchmark, ceiling, bench)
