"""The harness's judgement, framework-free (NumPy rows): the calibrated float32 bar of a recurrence, the
deadline that bounds a run on a lent machine, and bench.compare's two timing bars on synthetic JSON."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from bench import cases, compare, conftest, prepare
from impls import numpy_impl, tolerance

GRU_ROW = cases.Row("numpy", "numpy", "gru", cases.gru_size(3, 40, 5, 24, "seed"), "fwd", "float32", "cpu",
                    "quick", "reset_after")  # fmt: skip


def _check(row, monkeypatch, table: float, scale: float = 1.0):
    """The row's check() with the float32 table entry set to `table` and the output scaled by `scale`."""
    monkeypatch.setitem(tolerance.TOLERANCES, "float32", table)
    prepare._REFS.clear()
    prep = prepare.prepare_op(row, numpy_impl)
    out = prep.fn()
    return prep.check([o * np.float32(scale) for o in out])


def test_a_gru_row_within_the_table_is_judged_by_the_table_alone(monkeypatch):
    err, _, *more = _check(GRU_ROW, monkeypatch, table=2e-5)
    assert 0 < err < 2e-5 and more == []


def test_a_float32_gru_over_the_table_passes_when_numpy_float32_is_as_far_off(monkeypatch):
    err, note, ok, extra = _check(GRU_ROW, monkeypatch, table=1e-12)
    assert ok and extra["numpy_float32_err"] == pytest.approx(err, rel=1e-12)  # the row is NumPy float32 itself
    assert extra["calibrated_tolerance"] == pytest.approx(tolerance.CALIBRATED_FACTOR * err)
    assert "NumPy's own float32 error" in note


def test_a_float32_gru_far_beyond_numpy_float32_still_fails(monkeypatch):
    err, _, ok, extra = _check(GRU_ROW, monkeypatch, table=1e-12, scale=1.001)
    assert not ok and err > 100 * extra["numpy_float32_err"]


def test_the_calibrated_bar_is_only_for_float32_recurrences():
    with pytest.raises(ValueError, match=r"no calibrated tolerance for float32 conv2d"):
        tolerance.calibrated_tolerance("float32", "conv2d", 1e-6)
    with pytest.raises(ValueError, match=r"no calibrated tolerance for bfloat16 gru"):
        tolerance.calibrated_tolerance("bfloat16", "gru", 1e-6)
    assert tolerance.calibrated_tolerance("float32", "gru", 1e-9) == tolerance.tolerance("float32", "gru")


def test_a_dense_row_over_the_table_is_not_recalibrated(monkeypatch):
    row = cases.Row("numpy", "numpy", "dense", cases.dense_size(4, 30, 7, "seed"), "fwd", "float32", "cpu", "quick")
    err, _, *more = _check(row, monkeypatch, table=1e-12)
    assert err > 1e-12 and more == []  # judged by the table: measure() fails it


class _Config:
    def __init__(self, deadline, started):
        self.deadline, self._nnparity_t0 = deadline, started

    def getoption(self, name, default=None):
        return self.deadline if name == "bench_deadline" else default


class _Request:
    def __init__(self, config):
        self.config = config


def test_rows_after_the_deadline_skip_with_the_reason():
    late = _Config(5.0, time.monotonic() - 10)
    with pytest.raises(pytest.skip.Exception, match=r"--bench-deadline 5 s had passed \(1\d s into the session\)"):
        conftest.bench_opts.__wrapped__(_Request(late))
    assert conftest.bench_opts.__wrapped__(_Request(_Config(60.0, time.monotonic()))).profile == "quick"


def _run(path, rows):
    benchmarks = [{"name": k, "stats": {"median": m}, "extra_info": {"id": k, **e}} for k, m, e in rows]
    path.write_text(json.dumps({"benchmarks": benchmarks}))
    return str(path)


def test_compare_repeatability_bar_counts_rows_within_five_percent(tmp_path, capsys):
    a = _run(tmp_path / "a.json", [(f"r{i}", 1.0, {}) for i in range(10)])
    b9 = _run(tmp_path / "b9.json", [(f"r{i}", 1.04 if i else 1.2, {}) for i in range(10)])
    b8 = _run(tmp_path / "b8.json", [(f"r{i}", 1.04 if i > 1 else 0.9, {}) for i in range(10)])
    assert compare.main([a, b9]) == 0 and "9 of 10 rows (90.0%)" in capsys.readouterr().out
    assert compare.main([a, b8]) == 1 and "8 of 10 rows (80.0%)" in capsys.readouterr().out


def test_compare_fidelity_bar_applies_to_cuda_rows_of_one_ms_or_more(tmp_path, capsys):
    ev = lambda m, r: {"cuda_event_median_s": m / r, "cuda_event_ratio": r}
    good = _run(tmp_path / "g.json", [("a", 2e-3, ev(2e-3, 1.02)), ("b", 6e-4, ev(6e-4, 1.5)), ("c", 1e-5, {})])
    bad = _run(tmp_path / "b.json", [("a", 2e-3, ev(2e-3, 1.02)), ("d", 5e-3, ev(5e-3, 0.93))])
    assert compare.main([good]) == 0 and "1 of 1 cuda rows" in capsys.readouterr().out
    assert compare.main([bad]) == 1 and "1 of 2 cuda rows" in capsys.readouterr().out


def test_compare_can_judge_repeatability_on_the_fastest_call(tmp_path, capsys):
    def run(path, medians, mins):
        benchmarks = [{"name": f"r{i}", "stats": {"median": m, "min": n}, "extra_info": {"id": f"r{i}"}}
                      for i, (m, n) in enumerate(zip(medians, mins))]  # fmt: skip
        path.write_text(json.dumps({"benchmarks": benchmarks}))
        return str(path)

    a = run(tmp_path / "a.json", [1.0] * 10, [0.9] * 10)
    b = run(tmp_path / "b.json", [1.2] * 10, [0.91] * 10)
    assert compare.main([a, b]) == 1 and "0 of 10 rows (0.0%) have medians" in capsys.readouterr().out
    assert compare.main(["--stat", "min", a, b]) == 0 and "10 of 10 rows (100.0%) have mins" in capsys.readouterr().out
