"""The harness's judgement, framework-free (NumPy rows): the calibrated float32 bar of a recurrence, the
deadline that bounds a run on a lent machine, a session timing a group, and bench.compare's bars on
synthetic JSON."""

from __future__ import annotations

import dataclasses
import json
import re
import time

import numpy as np
import pytest

from bench import cases, compare, groups, harness, prepare
from impls import frameworks
from impls.contract import tolerance
from impls.primitives import numpy_impl
from tests import reports_synth as S

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


def test_rows_after_the_deadline_skip_with_the_reason():
    opts = harness.Options("quick", harness.TIMING["quick"])
    late = groups.Session(opts, deadline=5.0, t0=time.monotonic() - 10)
    out = late.outcome(GRU_ROW)
    assert re.fullmatch(r"not run: --bench-deadline 5 s had passed \(1\d s into the session\)", out.skip)
    on_time = groups.Session(dataclasses.replace(opts, enabled=False), deadline=60.0)
    assert on_time.outcome(GRU_ROW).info["err_ok"] is True  # prepared and checked, not timed


def test_with_timing_off_no_epoch_runs(monkeypatch):
    collected = []
    monkeypatch.setattr(groups.gc, "collect", lambda: collected.append(1))  # ~0.25 s each with TF loaded
    off = groups.Session(harness.Options("quick", harness.TIMING["quick"], enabled=False))
    off.register([GRU_ROW])
    assert off.outcome(GRU_ROW).times is None and collected == [] and off.start is None


def test_a_session_times_a_group_together_and_each_row_takes_its_own_share():
    timing = dataclasses.replace(harness.TIMING["quick"], slot=0.002, group_time=0.05, epochs=2)
    opts = harness.Options("quick", timing, blocks=4)
    rows = [GRU_ROW, dataclasses.replace(GRU_ROW, precision="float64")]  # two groups of one (numpy only)
    dense = [cases.Row("numpy", "numpy", "dense", cases.dense_size(4, 30, 7, "seed"), "fwd", p, "cpu", "quick")
             for p in ("float32", "float64")]  # fmt: skip
    s = groups.Session(opts)
    s.register(rows + dense)
    assert set(s.pending) == {r.group for r in rows + dense} and len(s.pending) == 4
    out = s.outcome(dense[0])
    p = out.info["paired"]
    assert len(out.times) == 4 == p["blocks"] == out.info["rounds"] and p["reference"] == dense[0].id
    assert p["epochs"] == [0, 0, 1, 1] and p["interval_units"] == "epochs"
    assert set(s.outcomes) == {r.id for r in rows + dense[1:]}  # every group was timed: epochs span them all
    assert p["ratio"] == 1.0 and p["ci95"] == [1.0, 1.0] and p["threads"] == "framework defaults"
    assert s.start is not None and {g["group"] for g in s.groups} == {r.group for r in rows + dense}
    with pytest.raises(KeyError):  # taken: a row's outcome is handed out once
        s.outcomes[dense[0].id]
    v = s.finish()
    assert v["groups_timed"] == 4 and "contended" in v and v["end"]["matmul_gflops"] > 0


def _paired_run(path, medians, seed, **kw):
    path.write_text(json.dumps(S.run(S.paired_rows(medians, seed=seed, **kw))))
    return str(path)


MED = {"torch_nn": 0.010, "keras": 0.012, "tensorflow": 0.015, "numpy": 0.03, "torch": 0.05}


def test_compare_prints_the_three_figures_of_the_paired_bar(tmp_path, capsys):
    a = _paired_run(tmp_path / "a.json", MED, seed=1)
    b = _paired_run(tmp_path / "b.json", MED, seed=2)
    assert compare.main([a, b]) == 0
    out = capsys.readouterr().out
    assert "1. agreement: 4 of 4 rows (100.0%)" in out and "2. median half-width of the 95% intervals: 0." in out
    assert "3. headline order: 1 of 1 seed-model groups keep their order" in out


def test_compare_fails_a_reversed_order_and_a_moved_ratio(tmp_path, capsys):
    a = _paired_run(tmp_path / "a.json", MED, seed=1)
    b = _paired_run(tmp_path / "b.json", dict(MED, keras=0.020), seed=2)  # keras now behind tensorflow
    assert compare.main([a, b]) == 1
    out = capsys.readouterr().out
    assert "1. agreement: 3 of 4 rows (75.0%)" in out and "seed_gru_model-keras" in out
    assert "0 of 1 seed-model groups keep their order" in out and "vs" in out
    assert "raw times: 1 rows moved" in out


def test_compare_fails_wide_intervals(tmp_path, capsys):
    a = _paired_run(tmp_path / "a.json", MED, seed=1, noise=0.3)
    b = _paired_run(tmp_path / "b.json", MED, seed=2, noise=0.3)
    assert compare.main([a, b]) == 1 and "(bar: 5%)" in capsys.readouterr().out


def _run(path, rows):
    benchmarks = [{"name": k, "stats": {"median": m}, "extra_info": {"id": k, **e}} for k, m, e in rows]
    path.write_text(json.dumps({"benchmarks": benchmarks}))
    return str(path)


def test_compare_fidelity_bar_applies_to_cuda_rows_of_one_ms_or_more(tmp_path, capsys):
    ev = lambda m, r: {"cuda_event_median_s": m / r, "cuda_event_ratio": r}
    good = _run(tmp_path / "g.json", [("a", 2e-3, ev(2e-3, 1.02)), ("b", 6e-4, ev(6e-4, 1.5)), ("c", 1e-5, {})])
    bad = _run(tmp_path / "b.json", [("a", 2e-3, ev(2e-3, 1.02)), ("d", 5e-3, ev(5e-3, 0.93))])
    assert compare.main([good]) == 0 and "1 of 1 cuda rows" in capsys.readouterr().out
    assert compare.main([bad]) == 1 and "1 of 2 cuda rows" in capsys.readouterr().out


def test_compare_says_when_runs_carry_no_paired_data(tmp_path, capsys):
    a = _run(tmp_path / "a.json", [("r", 1.0, {})])
    assert compare.main([a, a]) == 1 and "no paired rows in common" in capsys.readouterr().out


def test_a_cuda_row_of_a_framework_without_a_gpu_says_why():
    """jax and onnxruntime cuda rows skip with the reason where their install has no GPU backend, as TensorFlow's
    do; torch has no such case (it decides whether there are cuda rows at all)."""

    def has_gpu(framework: str) -> bool:
        if framework == "onnxruntime":
            return "CUDAExecutionProvider" in frameworks.load("onnxruntime").get_available_providers()
        return any(d.platform == "gpu" for d in frameworks.load("jax").devices())

    for framework, words in (("jax", "JAX sees no GPU"), ("flax", "JAX sees no GPU"),
                             ("onnxruntime", "no CUDAExecutionProvider")):  # fmt: skip
        try:
            frameworks.load(framework)
        except frameworks.BackendUnavailable as e:
            pytest.skip(str(e))
        gpu = has_gpu(framework)
        why = harness.cuda_missing(framework)
        assert (why is None) == gpu, (framework, why)
        if not gpu:
            assert words in why
    assert harness.cuda_missing("torch") is None
    rows = cases.rows("deepbench", ("cpu", "cuda"))
    cuda_impls = {r.impl for r in rows if r.device == "cuda"}
    assert {"jax", "flax", "onnxruntime", "torch", "torch_nn"} <= cuda_impls  # jax beside torch on the GPU
