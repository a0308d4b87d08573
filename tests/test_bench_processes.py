"""Worker processes (issue 19): a real `pytest bench/ --bench-processes 2` on one cheap group (NumPy and
torch's dense forward) gives one pytest-benchmark entry per row with per-process estimates and records what
varied per worker; the cost model's allocation; machines labelled from their hardware."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import compare, costmodel, harness, machine, processes

ROOT = Path(__file__).resolve().parents[1]
SELECT = "dense and fwd and not bwd and float32 and not tf and not keras and not jax and not ort and not flax and not torch_nn"


def _bench(out: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pytest", "bench/", "-q", "-p", "no:cacheprovider", "-k", SELECT,
           "--bench-slot", "0.002", "--bench-blocks", "4", f"--benchmark-json={out}", *extra]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", PYTHONHASHSEED="0")
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env, check=False)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


@pytest.fixture(scope="module")
def two(tmp_path_factory) -> dict:
    pytest.importorskip("torch", reason="the group needs torch beside NumPy")
    out = tmp_path_factory.mktemp("procs") / "run.json"
    _bench(out, "--bench-processes", "2", "--bench-label", "test box")
    return json.loads(out.read_text())


def test_two_workers_give_one_entry_per_row_with_per_process_estimates(two):
    rows = {b["extra_info"]["impl"]: b for b in two["benchmarks"]}
    assert set(rows) == {"numpy", "torch"}
    for b in rows.values():
        p = b["extra_info"]["paired"]
        assert p["interval_units"] == "processes" and sorted(set(p["processes"])) == [0, 1]
        assert len(p["per_process"]) == 2 and all(d["blocks"] == 4 for d in p["per_process"])
        assert b["stats"]["rounds"] == p["blocks"] == 8 == len(p["times_s"]) == len(p["log_ratios"])
        assert p["epochs"] == [0, 0, 1, 1, 2, 2, 3, 3]  # two epochs in each worker, numbered over the run
        if b["extra_info"]["id"] == p["reference"]:
            assert p["ratio"] == 1.0 and p["ci95"] == [1.0, 1.0]
        else:
            mean = sum(d["mean"] for d in p["per_process"]) / 2
            assert p["ratio"] == pytest.approx(pytest.importorskip("math").exp(mean))
            assert p["ci95"][0] < p["ratio"] < p["ci95"][1] and p["df"] == p["model"]["prior_df"] + 1


def test_each_worker_records_what_varied_and_what_stayed_fixed(two):
    f = two["machine_info"]["nnparity"]
    w = f["processes"]["workers"]
    assert f["processes"]["k"] == 2 and len(w) == 2 and all(x["rc"] == 0 for x in w)
    assert w[0]["pid"] != w[1]["pid"] and w[0]["hashseed"] != w[1]["hashseed"]
    for x in w:  # what the worker saw is what the parent drew
        assert x["seen_hashseed"] == str(x["hashseed"]) and x["seen_pad"] == x["pad"]
        assert x["malloc"]["policy"] == f["malloc"]["policy"] and x["startup_s"] > 0
        if f["pin"]["policy"] == "pinned":
            assert x["pin"]["cpu"] == f["pin"]["cpu"]
    assert len({(x["pad"], x["alloc_bytes"], x["shuffle_seed"]) for x in w}) == 2
    assert "PYTHONHASHSEED" in f["processes"]["varied"] and f["processes"]["fixed"]
    assert f["label"] == "test box" and f["label_from"] == "--bench-label"
    assert isinstance(f["tree"]["dirty"], list)


def test_compare_reads_the_process_run(two, tmp_path, capsys):
    p = tmp_path / "r.json"
    p.write_text(json.dumps(two))
    assert compare.main([str(p), str(p)]) in (0, 1)
    assert "1. agreement: 1 of 1 rows (100.0%)" in capsys.readouterr().out


def test_one_process_is_todays_behaviour(tmp_path):
    pytest.importorskip("torch", reason="the group needs torch beside NumPy")
    out = tmp_path / "one.json"
    _bench(out, "--bench-processes", "1")
    data = json.loads(out.read_text())
    assert data["machine_info"]["nnparity"]["processes"]["k"] == 1
    for b in data["benchmarks"]:
        p = b["extra_info"]["paired"]
        assert "processes" not in p and p["interval_units"] == "epochs" and p["blocks"] == 5  # 1 block x 5 epochs


def test_the_cost_model_picks_two_processes_for_quick_within_its_budget():
    c = costmodel.COSTS["quick"]
    a = costmodel.allocate(c)
    assert a.processes == 2 and a.fits and 2 * (c.startup_s + a.timed_s) <= c.budget_s
    for k in range(2, 6):  # the chosen k has the smallest variance of those that fit
        t = c.budget_s / k - c.startup_s
        assert t <= 0 or c.variance(k, min(t, a.optimum_s)) >= a.variance - 1e-15
    cheap = dataclasses.replace(c, startup_s=2.0)  # start-up nearly free: many processes
    assert costmodel.allocate(cheap).processes > 4
    none = dataclasses.replace(c, startup_s=200.0)  # two start-ups over the budget: say so (cut rows)
    assert not costmodel.allocate(none).fits
    t = costmodel.worker_timing(harness.TIMING["quick"], a.share)
    assert t.epochs == 2 and t.min_blocks >= 2 and t.max_blocks < harness.TIMING["quick"].max_blocks


def test_workers_vary_their_setup_from_the_run_seed():
    v = processes.varied(123, 3)
    assert v == processes.varied(123, 3) and len({x["hashseed"] for x in v}) == 3
    assert all(0 <= x["pad"] <= processes.PAD_MAX and x["alloc_bytes"] < processes.ALLOC_MAX_MIB * 2**20 for x in v)


def test_a_machine_is_labelled_from_its_hardware():
    f = {"cpu_model": "Intel(R) Xeon(R) Platinum 8480+", "cores": 2, "gpu": None}
    assert machine.label(f) == "Intel Xeon Platinum 8480+, 2 cores"
    f["gpu"] = {"name": "NVIDIA H100 80GB HBM3", "count": 8}
    assert machine.label(f) == "Intel Xeon Platinum 8480+, 2 cores, 8x NVIDIA H100 80GB HBM3"


def test_reports_name_machines_by_hardware_and_say_which_files_a_dirty_run_differed_in(tmp_path):
    from reports import build, load
    from tests import reports_synth as S

    old = S.run([S.row("torch", 0.01)], node="vm", gpu={"name": "NVIDIA H100 80GB HBM3", "count": 2})
    del old["machine_info"]["nnparity"]["label"]  # a run from before issue 19: labelled from its facts
    new = S.run([S.row("torch", 0.01)], node="vm", cpu="Intel Xeon")
    new["machine_info"]["nnparity"]["label"] = "my box"
    new["machine_info"]["nnparity"]["tree"] = {"commit": "abc123", "dirty": ["bench/paired.py", "impls/x.py"]}
    paths = []
    for name, r in (("old.json", old), ("new.json", new)):
        (tmp_path / name).write_text(json.dumps(r))
        paths.append(str(tmp_path / name))
    runs = load.load_runs(paths)
    assert runs[0].label == "AMD EPYC 7B13, 2 cores, 2x NVIDIA H100 80GB HBM3" and runs[1].label == "my box"
    text = "\n".join(build.provenance(["x"], runs, []))
    assert "new.json was run from a dirty tree" in text and "bench/paired.py, impls/x.py" in text
    assert "AMD EPYC 7B13, 2 cores" in text and "This report was built from" in text
