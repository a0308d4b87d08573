"""End to end: `pytest bench/ --benchmark-json` on one small comparison group writes pytest-benchmark JSON
whose rows carry their own stats and extra_info["paired"], the run's machine state, and which
bench.compare and the report builder read (torch rows; skipped without torch)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import compare
from reports import __main__ as cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_json(tmp_path_factory) -> Path:
    pytest.importorskip("torch", reason="the group needs torch beside NumPy")
    out = tmp_path_factory.mktemp("paired") / "run.json"
    cmd = [sys.executable, "-m", "pytest", "bench/", "-q", "-p", "no:cacheprovider",
           "-k", "dense and fwd and not bwd and float32 and not tf and not keras and not jax and not ort and not flax",
           "--bench-blocks", "6", "--bench-epochs", "3", "--bench-slot", "0.002", "--bench-processes", "1",
           f"--benchmark-json={out}"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}  # not an xdist worker's settings
    env.update(TF_CPP_MIN_LOG_LEVEL="2", PYTHONHASHSEED="0")
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env, check=False)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "nnparity: machine " in r.stdout  # the terminal summary states the machine's state
    return out


def test_each_row_keeps_its_own_stats_and_its_paired_ratio(run_json):
    data = json.loads(run_json.read_text())
    rows = {b["extra_info"]["impl"]: b for b in data["benchmarks"]}
    assert set(rows) == {"numpy", "torch", "torch_nn"}
    groups = {b["extra_info"]["paired"]["group"] for b in rows.values()}
    assert groups == {"dense-cpu-float32-B32IN1600OUT128-fwd"}
    refs = {b["extra_info"]["paired"]["reference"] for b in rows.values()}
    assert len(refs) == 1
    for b in rows.values():
        p, st = b["extra_info"]["paired"], b["stats"]
        assert p["blocks"] == st["rounds"] == 6 == len(p["log_ratios"]) == len(p["times_s"])
        assert p["epochs"] == [0, 0, 1, 1, 2, 2] and p["interval_units"] == "epochs"
        assert st["iterations"] == p["loops"] >= 1 and p["threads"] == 1  # the quick profile's one thread
        assert st["median"] == pytest.approx(sum(sorted(p["times_s"])[2:4]) / 2, rel=1e-9)
        if b["extra_info"]["id"] in refs:
            assert p["ratio"] == 1.0 and p["ci95"] == [1.0, 1.0]
        else:
            assert p["ratio"] >= 1.0 and p["ci95"][0] <= p["ratio"] <= p["ci95"][1]
        assert b["extra_info"]["err_ok"] is True and "others_cores" in p["machine"]
    c = data["machine_info"]["nnparity"]["contention"]
    assert isinstance(c["contended"], bool) and c["start"]["matmul_gflops"] > 0 and c["groups_timed"] == 1


def test_compare_and_the_report_read_the_run(run_json, tmp_path, capsys):
    assert compare.main([str(run_json), str(run_json)]) in (0, 1)  # the same run twice: the figures print
    out = capsys.readouterr().out
    assert "1. agreement: 2 of 2 rows (100.0%)" in out and "3. headline order: 0 of 0" in out
    report = tmp_path / "r.md"
    assert cli.main([str(run_json), "-o", str(report), "--no-plots"]) == 0
    text = report.read_text()
    assert "1.00× (reference)" in text and "(unpaired)" not in text
