"""The report builder on synthetic pytest-benchmark runs whose answers are known: the fastest
implementation and its factors, ratios, ceiling shares, the error flag, comparisons that flag only
changes beyond both runs' spread, one column per machine, escaping, plots, provenance, verification."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import types
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import paired
from reports import __main__ as cli
from reports.fmt import fmt_r
from reports.markdown import escape
from reports.verify_summary import parse_name
from tests import reports_synth as S

SEED_MEDIANS = {"numpy": 0.050, "torch": 0.010, "tensorflow": 0.020, "keras": 0.040, "torch_nn": 0.013}


def build(tmp_path: Path, runs: dict[str, dict], *extra: str, plots: bool = False) -> tuple[str, list[str]]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    paths = [S.write(tmp_path / name, data) for name, data in runs.items()]
    argv = [*paths, "-o", str(tmp_path / "out" / "report.md"), *extra] + ([] if plots else ["--no-plots"])
    assert cli.main(argv) == 0
    return (tmp_path / "out" / "report.md").read_text(), argv


def seed_rows(medians=SEED_MEDIANS, **kw) -> list[dict]:
    return [S.row(impl, t, **kw) for impl, t in medians.items()]


def headline_line(text: str, machine: str, model: str) -> str:
    return next(ln for ln in text.splitlines() if ln.startswith(f"- **{machine}**, {model}"))


def test_headline_names_fastest_and_its_factors(tmp_path):
    text, _ = build(tmp_path, {"run.json": S.run(seed_rows())})
    line = headline_line(text, "boxA", "seed GRU model")
    fastest, nxt, slowest = min(SEED_MEDIANS, key=SEED_MEDIANS.get), "torch_nn", "numpy"
    assert fastest == "torch"
    assert f"**{fastest} (eager)** is fastest at 10 ms" in line
    assert f"{SEED_MEDIANS[nxt] / SEED_MEDIANS[fastest]:.2f}× faster than the next, {nxt} (eager)" in line
    assert f"{SEED_MEDIANS[slowest] / SEED_MEDIANS[fastest]:.2f}× faster than the slowest, {slowest}" in line
    assert "Correct: **yes**" in line and "not a clear win" not in line
    assert "seed CNN model: not measured" in text


def _lr(rows: list[dict]) -> dict[str, list[float]]:
    return {r["extra_info"]["impl"]: r["extra_info"]["paired"]["log_ratios"] for r in rows}


def test_paired_headline_states_each_ratio_with_its_interval(tmp_path):
    rows = S.paired_rows(SEED_MEDIANS, noise=0.01)
    text, _ = build(tmp_path, {"run.json": S.run(rows)})
    line = headline_line(text, "boxA", "seed GRU model")
    lr = _lr(rows)
    over_next, over_slowest = paired.between(lr["torch_nn"], lr["torch"]), paired.between(lr["numpy"], lr["torch"])
    assert "**torch (eager)** is fastest at" in line
    assert f"{fmt_r(over_next)} faster than the next, torch_nn (eager)" in line
    assert f"{fmt_r(over_slowest)} faster than the slowest, numpy (5 measured)" in line
    assert over_next.ci95[0] < 1.3 < over_next.ci95[1] and re.search(r"1\.\d\d× \(1\.\d\d–1\.\d\d\)", line)
    summary = S.table_after(text, "Every seed-model measurement")[0]
    assert summary["order, fastest first ([ties])"] == ("torch (eager) > torch_nn (eager) > tensorflow (tf.function) "
                                                        "> keras (tf.function) > numpy")  # fmt: skip
    assert summary["× over next (95% CI)"] == fmt_r(over_next)
    t = {r["implementation"]: r for r in S.table_after(text, "#### seed_gru_model · fwd · cpu · float32")}
    assert t["torch"]["× fastest (95% CI)"] == "1.00× (reference)"
    assert t["keras"]["× fastest (95% CI)"] == fmt_r(paired.between(lr["keras"], lr["torch"]))


@pytest.mark.parametrize("medians", [{"torch": 0.010, "torch_nn": 0.010, "numpy": 0.05},  # the interval includes 1
                                     {"torch": 0.010, "torch_nn": 0.0101, "numpy": 0.05}])  # 1%: within +-3%
def test_an_indistinguishable_lead_is_never_called_fastest(tmp_path, medians):
    rows = S.paired_rows(medians, noise=0.002 if medians["torch_nn"] != 0.010 else 0.03)
    text, _ = build(tmp_path, {"run.json": S.run(rows)})
    line = headline_line(text, "boxA", "seed GRU model")
    assert "is fastest" not in line and "are indistinguishable at the top" in line and "no fastest is claimed" in line
    summary = S.table_after(text, "Every seed-model measurement")[0]
    assert summary["order, fastest first ([ties])"].startswith("[") and summary["order, fastest first ([ties])"].endswith("] > numpy")
    cells = {r["implementation"]: r["× fastest (95% CI)"] for r in S.table_after(text, "#### seed_gru_model · fwd · cpu · float32")}
    assert sum(c.endswith("indistinguishable") for c in cells.values()) == 1 and "(reference)" in "".join(cells.values())


def test_a_contended_run_says_so_in_the_headline_first_line(tmp_path):
    data = S.contended(S.run(S.paired_rows(SEED_MEDIANS)), ["other processes used 0.98 cores on average (bar 0.25)"])
    text, _ = build(tmp_path, {"run.json": data})
    first = text.split("## Headline\n\n", 1)[1].splitlines()[0]
    assert first.startswith("- **Contended run: ") and "0.98 cores" in first
    quiet = S.contended(S.run(S.paired_rows(SEED_MEDIANS)), [], groups=["seed_gru_model-cpu-float32-fwd"])
    text, _ = build(tmp_path / "q", {"run.json": quiet})
    first = text.split("## Headline\n\n", 1)[1].splitlines()[0]
    assert "Contended" not in text and first.endswith("while other processes used the CPU: seed_gru_model-cpu-float32-fwd.")


def test_unpaired_runs_still_read_and_say_their_ratios_have_no_interval(tmp_path):
    text, _ = build(tmp_path, {"run.json": S.run(seed_rows())})
    assert "these ratios have no interval" in headline_line(text, "boxA", "seed GRU model")
    t = {r["implementation"]: r for r in S.table_after(text, "#### seed_gru_model · fwd · cpu · float32")}
    assert t["numpy"]["× fastest (95% CI)"] == f"{0.050 / 0.010:.2f}× (unpaired)"


def test_headline_says_when_the_fastest_is_wrong(tmp_path):
    rows = [S.row(i, t, err=1e-3 if i == "torch" else 3e-7) for i, t in SEED_MEDIANS.items()]
    text, _ = build(tmp_path, {"run.json": S.run(rows)})
    line = headline_line(text, "boxA", "seed GRU model")
    assert "Correct: **NO**, **FAIL** 1.0e-03 > 2e-05" in line
    assert f"fastest correct one is torch_nn (eager) ({0.013 / 0.010:.2f}× slower)" in line  # unpaired: no interval
    summary = S.table_after(text, "Every seed-model measurement")
    assert summary[0]["fastest correct?"] == "**NO**" and summary[0]["out of tolerance"] == "torch (eager)"


def test_ratio_gflops_and_ceiling_shares(tmp_path):
    g = {"B": 4, "T": 8, "I": 6, "H": 16}
    rows = [
        S.row("torch", 0.010, work="gru", sizes=g, flops=2 * 10**9, bytes_=10**6),
        S.row("numpy", 0.025, work="gru", sizes=g, flops=2 * 10**9, bytes_=10**6),
        S.row("torch", 0.010, work="gru", sizes=g, flops=2 * 10**9, precision="float64", tol=1e-10, err=1e-14),
        S.row("torch", 0.010, work="max_pool2d", sizes={"B": 4}, flops=10**6, bytes_=10**8),
        S.row("torch", 0.010, work="gru", sizes=g, flops=2 * 10**9, device="cuda"),  # no cuda ceiling
    ]
    ceilings = [S.ceiling("matmul", 0.01, flops=8 * 10**9), S.ceiling("copy", 0.01, bytes_=2 * 10**8),
                S.ceiling("matmul", 0.01, flops=4 * 10**9, precision="float64")]  # fmt: skip
    text, _ = build(tmp_path, {"run.json": S.run(rows + ceilings)})

    f32 = {r["implementation"]: r for r in S.table_after(text, "#### gru · fwd · cpu · float32")}
    assert f32["torch"]["× fastest (95% CI)"] == "1.00× (unpaired)"
    assert f32["numpy"]["× fastest (95% CI)"] == f"{0.025 / 0.010:.2f}× (unpaired)"
    assert f32["torch"]["GFLOP/s"] == f"{2e9 / 0.010 / 1e9:.3g}"  # 200
    assert f32["torch"]["ceiling share"] == f"{100 * (2e9 / 0.010) / (8e9 / 0.01):.0f}% matmul"  # 25%
    assert f32["numpy"]["ceiling share"] == f"{100 * (2e9 / 0.025) / (8e9 / 0.01):.0f}% matmul"  # 10%
    f64 = S.table_after(text, "#### gru · fwd · cpu · float64")[0]
    assert f64["ceiling share"] == f"{100 * (2e9 / 0.010) / (4e9 / 0.01):.0f}% matmul"  # its own ceiling: 50%
    pool = S.table_after(text, "#### max_pool2d · fwd · cpu · float32")[0]
    assert pool["GB/s"] == f"{1e8 / 0.010 / 1e9:.3g}"
    assert pool["ceiling share"] == f"{100 * (1e8 / 0.010) / (2e8 / 0.01):.0f}% copy"  # memory-bound: 50%
    cuda = S.table_after(text, "#### gru · fwd · cuda · float32")[0]
    assert cuda["ceiling share"] == "—"


def test_out_of_tolerance_rows_are_marked_never_hidden(tmp_path):
    g = {"B": 4, "T": 8, "I": 6, "H": 16}
    rows = [S.row("torch", 0.01, work="gru", sizes=g, err=4e-4), S.row("keras", 0.02, work="gru", sizes=g),
            S.row("tensorflow", 0.03, work="gru", sizes=g, err=None)]  # fmt: skip
    text, _ = build(tmp_path, {"run.json": S.run(rows)})
    t = {r["implementation"]: r for r in S.table_after(text, "#### gru · fwd · cpu · float32")}
    assert set(t) == {"torch", "keras", "tensorflow"}
    assert t["torch"]["max rel err vs float64"] == "**FAIL** 4.0e-04 > 2e-05"
    assert "FAIL" not in t["keras"]["max rel err vs float64"]
    assert t["tensorflow"]["max rel err vs float64"].startswith("not measured: not measured in this synthetic")


def test_a_row_judged_by_a_calibrated_bar_shows_that_bar(tmp_path):
    # a float32 row over the table's bar passes against 10x NumPy's own float32 error (bench/seqtrain.py): the cell
    # shows the bar it was judged by, never "3.2e-05 <= 2e-05"
    g = {"B": 4, "T": 8, "I": 6, "H": 16}
    rows = [S.row("torch", 0.01, work="gru", sizes=g, err=3.2e-5, err_ok=True, calibrated_tolerance=3.2e-4,
                  numpy_float32_err=3.2e-5),
            S.row("keras", 0.02, work="gru", sizes=g, err=4e-4, err_ok=False, calibrated_tolerance=3.2e-4)]  # fmt: skip
    text, _ = build(tmp_path, {"run.json": S.run(rows)})
    t = {r["implementation"]: r for r in S.table_after(text, "#### gru · fwd · cpu · float32")}
    assert t["torch"]["max rel err vs float64"].startswith("3.2e-05 ≤ 3.2e-04 (calibrated: 2e-05 is below")
    assert t["keras"]["max rel err vs float64"].startswith("**FAIL** 4.0e-04 > 3.2e-04 (calibrated")


def _verdicts(text: str) -> dict[str, dict]:
    return {r["implementation"]: r for r in S.table_after(text, "## Comparison with earlier runs")}


def test_comparison_judges_ratios_by_their_intervals_and_raw_times_by_mann_whitney(tmp_path):
    med = {"torch": 0.010, "torch_nn": 0.013, "keras": 0.020, "numpy": 0.050}
    old = S.run(S.paired_rows(med, seed=1), when="2026-11-01T10:00:00+00:00")
    moved = dict(med, keras=0.026)  # keras 30% slower, the rest as before (a new drift draw)
    new = S.run(S.paired_rows(moved, seed=2, drift=0.0), when="2026-11-20T10:00:00+00:00")
    text, _ = build(tmp_path, {"new.json": new, "old.json": old})  # newest first: order is by datetime
    v = _verdicts(text)
    assert v["torch"]["ratio"] == "reference" and v["keras"]["ratio"] == "**differs**"
    assert v["torch_nn"]["ratio"] == v["numpy"]["ratio"] == "agrees"
    assert v["keras"]["raw time"].endswith(": **slower**")
    assert "old.json → " in text and "Relative speed: 2 of 3 rows keep their ratio" in text


def test_comparison_rebases_the_new_run_on_the_old_runs_reference(tmp_path):
    old = S.run(S.paired_rows({"torch": 0.0100, "keras": 0.0101, "numpy": 0.05}, seed=3, noise=0.03), when="2026-01-01")
    new = S.run(S.paired_rows({"torch": 0.0101, "keras": 0.0100, "numpy": 0.05}, seed=4, noise=0.03), when="2026-01-02")
    assert old["benchmarks"][0]["extra_info"]["paired"]["reference"].startswith("seed_gru_model-torch")  # premise
    assert new["benchmarks"][1]["extra_info"]["paired"]["reference"].startswith("seed_gru_model-keras")  # premise
    text, _ = build(tmp_path, {"a.json": old, "b.json": new})
    v = _verdicts(text)
    assert v["torch"]["ratio"] == "reference" and v["torch"]["new × reference"] == "reference"
    lr = {r["extra_info"]["id"]: r["extra_info"]["paired"]["log_ratios"] for r in new["benchmarks"]}
    rebased = paired.rebase(lr, next(k for k in lr if "-torch-" in k))[next(k for k in lr if "-keras-" in k)]
    assert rebased.ratio < 1 and v["keras"]["ratio"] == "agrees" and v["keras"]["new × reference"] == fmt_r(rebased)


def test_runs_of_different_machines_merge_with_a_column_each(tmp_path):
    a = S.run(seed_rows(), node="cpubox")
    gpu = {"name": "NVIDIA H100", "driver": "560", "cuda": "12.6", "cudnn": "9.1"}
    b_rows = seed_rows({"torch": 0.002, "keras": 0.004}) + [S.row("torch_nn", 0.001, device="cuda")]
    b = S.run(b_rows, node="gpubox", cpu="Intel Xeon", gpu=gpu)
    text, _ = build(tmp_path, {"a.json": a, "b.json": b})
    merged = {r["implementation"]: r for r in S.table_after(text, "#### seed_gru_model · fwd · cpu · float32")}
    assert {"cpubox", "gpubox"} <= set(next(iter(merged.values())))
    assert merged["torch"]["cpubox"] == "10 ms (1.00× (unpaired))" and merged["torch"]["gpubox"] == "2 ms (1.00× (unpaired))"
    assert merged["keras"]["gpubox"] == "4 ms (2.00× (unpaired))" and merged["numpy"]["gpubox"] == "—"
    env = S.table_after(text, "## Environment")
    assert {"cpubox", "gpubox"} <= set(env[0])
    gpu_row = next(r for r in env if r[""] == "GPU")
    assert "NVIDIA H100" in gpu_row["gpubox"] and gpu_row["cpubox"] == "none"
    assert "**torch_nn (eager)** is fastest at 1 ms" in headline_line(text, "gpubox", "seed GRU model (fwd, cuda")
    assert "## Comparison" not in text  # different machines are merged, not compared


def test_names_from_json_cannot_break_tables(tmp_path):
    evil = "ev|il\n`x`<b>"
    rows = [S.row(evil, 0.01, work="gru", sizes={"B": 1}, mode="m|o\r\nde"), S.row("torch", 0.02, work="gru", sizes={"B": 1})]
    text, _ = build(tmp_path, {"run.json": S.run(rows)})
    table_lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    assert table_lines
    blocks, current = [], []
    for ln in text.splitlines() + [""]:
        if ln.startswith("|"):
            current.append(ln)
        elif current:
            blocks.append(current)
            current = []
    for block in blocks:  # every line of every table has its header's column count
        assert {len(S.cells(ln)) for ln in block} == {len(S.cells(block[0]))}, block[0]
    t = {r["implementation"]: r for r in S.table_after(text, "#### gru · fwd · cpu · float32")}
    assert escape(evil) in t and t[escape(evil)]["mode"] == escape("m|o\r\nde")
    assert "<b>" not in text


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("a|`<>\\\n\r&*_ ")), max_size=12))
def test_escape_leaves_no_raw_table_breakers(s):
    e = escape(s)
    assert "\n" not in e and "\r" not in e and "<" not in e
    assert S.cells(f"| {e} |") == [e.strip()]  # a single cell: every pipe is escaped
    for i, ch in enumerate(e):  # every pipe and backtick sits behind an odd run of backslashes
        if ch in "`|":
            run = len(e[:i]) - len(e[:i].rstrip("\\"))
            assert run % 2 == 1, (s, e)


def test_scaling_plots_written_beside_and_linked(tmp_path):
    rows = [S.row(i, 1e-4 * h * (k + 1), work="gru", sweep="hidden", sizes={"B": 4, "T": 8, "I": 6, "H": h})
            for k, i in enumerate(("torch", "keras")) for h in (16, 32, 64)]  # fmt: skip
    text, _ = build(tmp_path, {"run.json": S.run(rows)}, plots=True)
    png = tmp_path / "out" / "report-gru-hidden.png"
    assert "](report-gru-hidden.png)" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in png.parent.iterdir()) == ["report-gru-hidden.png", "report.md"]
    assert "No scaling plots" not in text
    seed_only, _ = build(tmp_path / "seed", {"run.json": S.run(seed_rows())}, plots=True)
    assert "No scaling plots: these runs have no hidden, seq_len or batch sweep" in seed_only


def test_report_states_its_command_and_inputs(tmp_path):
    text, argv = build(tmp_path, {"run.json": S.run(seed_rows())}, "--title", "quick | 2-core")
    assert "python -m reports " + shlex.join(argv) in text
    files = S.table_after(text, "Benchmark JSON read")
    assert [f["file"] for f in files] == [str(tmp_path / "run.json")]
    assert text.startswith("# quick \\| 2-core\n")


def test_seed_audit_included_and_linked(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "SEED-AUDIT.md").write_text("# Seed audit\n\n| claim | holds |\n|---|---|\n| GRU has 3 gates | yes |\n")
    text, _ = build(tmp_path, {"run.json": S.run(seed_rows())})
    assert "From [SEED-AUDIT.md](SEED-AUDIT.md):" in text
    assert "### Seed audit" in text and "| GRU has 3 gates | yes |" in text


JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" errors="0"
failures="1" skipped="2" tests="6" time="1.0" hostname="vm">
<testcase classname="verify.test_forward" name="test_forward_matches_float64_reference[gru-tf-float32-reset_after-B3T7I5H4]" time="0.01" />
<testcase classname="verify.test_forward" name="test_forward_matches_float64_reference[conv2d-tf-float64-B2]" time="0.01" />
<testcase classname="verify.test_forward" name="test_forward_matches_float64_reference[dense-tf-float32-x|y]" time="0.01"><failure message="AssertionError: 3 of 12 elements off&#10;worst at (0, 1)">long text</failure></testcase>
<testcase classname="verify.test_forward" name="test_forward_matches_float64_reference[gru-torch-float32-seed-B1]" time="0.0"><skipped type="pytest.skip" message="torch is not importable here">/x.py:1: torch</skipped></testcase>
<testcase classname="verify.test_forward" name="test_forward_matches_float64_reference[gru-torch_nn-float64-reset_after-B1]" time="0.0"><skipped type="pytest.skip" message="torch is not importable here">/x.py:1</skipped></testcase>
<testcase classname="verify.test_gradients" name="test_gru_vjp[np-float32]" time="0.0" />
</testsuite></testsuites>"""


def test_verification_summary_per_property_and_implementation(tmp_path):
    xml = tmp_path / "verify.xml"
    xml.write_text(JUNIT)
    text, _ = build(tmp_path, {"run.json": S.run(seed_rows())}, "--verify", str(xml))
    counts = {(r["property"], r["implementation"]): r for r in S.table_after(text, "Tests per property")}
    assert counts[("forward", "tensorflow")] == {"property": "forward", "implementation": "tensorflow", "tests": "3",
                                                 "passed": "2", "failed": "1", "error": "0", "skipped": "0"}  # fmt: skip
    assert counts[("forward", "torch")]["skipped"] == "1" and counts[("forward", "torch_nn")]["skipped"] == "1"
    assert counts[("gradients", "numpy")]["passed"] == "1"
    reasons = S.table_after(text, "Skip reasons")
    assert {(r["reason"], r["implementation"], r["tests"]) for r in reasons} == {
        ("torch is not importable here", "torch", "1"), ("torch is not importable here", "torch_nn", "1")}
    fail = S.table_after(text, "Failures (1)")[0]
    assert fail["test"].endswith("[dense-tf-float32-x\\|y]") and fail["message"] == "AssertionError: 3 of 12 elements off"
    assert "6 tests, 3 passed, 1 failed, 0 error, 2 skipped" in text
    line = headline_line(text, "boxA", "seed GRU model")
    assert line.endswith("Verification suite for torch: 0 passed, 0 failed, 1 skipped.")


def test_parse_name_reads_property_op_and_implementation():
    got = parse_name("verify.test_forward", "test_forward_matches_float64_reference[gru-tf-float32-reset_after-B3T7I5H4]")
    assert got == ("verify.test_forward", "test_forward_matches_float64_reference",
                   "gru-tf-float32-reset_after-B3T7I5H4", "forward", "gru", "tensorflow")  # fmt: skip
    assert parse_name("verify.test_formulas.TestCounts", "test_lstm")[3:] == ("formulas", "", "(none)")


def test_subcommands_dispatch_and_explain_when_missing(monkeypatch, capsys):
    seen = []
    fake = types.ModuleType("reports.fakesub")
    fake.main = lambda args: seen.append(args) or 3
    monkeypatch.setitem(sys.modules, "reports.fakesub", fake)
    monkeypatch.setitem(cli.SUBCOMMANDS, "fakesub", "a test double")
    monkeypatch.setitem(cli.SUBCOMMANDS, "nosuchsub", "not written")
    assert cli.main(["fakesub", "--x", "1"]) == 3 and seen == [["--x", "1"]]
    assert cli.main(["nosuchsub"]) == 2
    assert "needs reports/nosuchsub.py" in capsys.readouterr().err


def test_cli_exit_status_in_a_real_process(tmp_path):
    """The status reaches the shell (sys.exit(main())); success is checked in-process above."""
    bad = S.write(tmp_path / "bad.json", "{oops")
    cmd = [sys.executable, "-m", "reports", "--no-plots", "-o", str(tmp_path / "r.md"), bad]
    fail = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert fail.returncode == 2 and f"{bad}: not JSON" in fail.stderr and not (tmp_path / "r.md").exists()



def test_cli_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--no-plots"])
    assert e.value.code == 2 and "RUN.json" in capsys.readouterr().err


@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_identical_runs_never_flag_a_change(tmp_path, noise):
    rows = S.paired_rows(SEED_MEDIANS, noise=noise)
    text, _ = build(tmp_path, {"a.json": S.run(rows, when="2026-01-01"), "b.json": S.run(rows, when="2026-01-02")})
    v = _verdicts(text).values()
    assert {r["ratio"] for r in v} == {"agrees", "reference"} and not any("**" in r["raw time"] for r in v)


def test_runs_before_paired_timing_are_counted_not_judged(tmp_path):
    text, _ = build(tmp_path, {"a.json": S.run(seed_rows(), when="2026-01-01"), "b.json": S.run(seed_rows(), when="2026-01-02")})
    assert {r["ratio"] for r in _verdicts(text).values()} == {"not judged"}
    assert "5 rows come from a run before paired timing and are not judged" in text


def test_declared_bound_picks_the_ceiling_and_other_ceilings_are_listed(tmp_path):
    d = {"B": 8, "I": 64, "O": 32}
    rows = [S.row("torch", 0.01, work="dense", sizes=d, flops=6 * 10**9, bytes_=10**8, bound="memory"),
            S.row("keras", 0.01, work="dense", sizes=d, flops=6 * 10**9, bytes_=10**8)]  # fmt: skip
    ceilings = [S.ceiling("matmul", 0.01, flops=8 * 10**9), S.ceiling("copy", 0.01, bytes_=2 * 10**8),
                S.ceiling("empty", 2e-6)]  # fmt: skip
    text, _ = build(tmp_path, {"run.json": S.run(rows + ceilings)})
    t = {r["implementation"]: r for r in S.table_after(text, "#### dense · fwd · cpu · float32")}
    assert t["torch"]["ceiling share"] == f"{100 * (1e8 / 0.01) / (2e8 / 0.01):.0f}% copy"  # declared: memory
    assert t["keras"]["ceiling share"] == f"{100 * (6e9 / 0.01) / (8e9 / 0.01):.0f}% matmul"  # the larger share
    ceil = {r["ceiling"]: r for r in S.table_after(text, "## Measured ceilings")}
    assert ceil["matmul"]["best"] == "800 GFLOP/s" and ceil["copy"]["best"] == "20 GB/s"
    assert ceil["empty"]["best"] == "2 µs per call"


def test_environment_shows_blas_and_threads_as_bench_records_them(tmp_path):
    data = S.run(seed_rows())
    data["machine_info"]["nnparity"].update(
        blas={"numpy_build": {"name": "scipy-openblas", "version": "0.3.30"},
              "loaded": [{"internal_api": "openblas", "version": "0.3.30", "num_threads": 2,
                          "threading_layer": "pthreads", "architecture": "Zen", "prefix": "libscipy"}]},
        torch_threads=2, affinity=2, env={"OMP_NUM_THREADS": "2"})  # fmt: skip
    text, _ = build(tmp_path, {"run.json": data})
    env = {r[""]: r["boxA"] for r in S.table_after(text, "## Environment")}
    assert env["BLAS"] == "numpy built with scipy-openblas 0.3.30; openblas 0.3.30 (2 threads, pthreads, Zen)"
    assert env["torch threads"] == "2" and env["thread variables"] == "OMP_NUM_THREADS=2"
    assert env["cores / threads"] == "2 / 2 (affinity 2)"


def test_two_runs_of_one_machine_union_their_rows_latest_wins(tmp_path):
    quick = S.run(seed_rows(), when="2026-11-01T10:00:00+00:00")
    deep = S.run([S.row("torch", 0.004), S.row("torch", 0.5, work="gru", sweep="deepbench", sizes={"B": 4, "T": 187, "H": 1536})],
                 when="2026-11-02T10:00:00+00:00")  # fmt: skip
    text, _ = build(tmp_path, {"quick.json": quick, "deep.json": deep})
    seed = {r["implementation"]: r for r in S.table_after(text, "#### seed_gru_model · fwd · cpu · float32")}
    assert seed["torch"]["median"] == "4 ms" and seed["torch"]["× fastest (95% CI)"] == "1.00× (unpaired)"  # the newer run's
    assert seed["torch_nn"]["median"] == "13 ms" and seed["torch_nn"]["× fastest (95% CI)"] == f"{0.013 / 0.004:.2f}× (unpaired)"
    assert S.table_after(text, "#### gru · fwd · cpu · float32")[0]["sweep"] == "deepbench"
    assert "take each row from the latest run" in text


def test_number_formats_stay_readable():
    from reports.fmt import fmt_ci, fmt_pct, fmt_rate, fmt_ratio, fmt_time

    assert [fmt_time(x) for x in (2.5, 0.0123, 4.56e-5, 4.11e-7)] == ["2.5 s", "12.3 ms", "45.6 µs", "411 ns"]
    assert [fmt_rate(x) for x in (1e12, 2.5e9, 1.234e13, 0, None)] == ["1000", "2.5", "12340", "—", "—"]
    assert [fmt_pct(x) for x in (0.0004, 0.25, 1.25)] == ["0.04%", "25%", "125%"]
    assert [fmt_ratio(x) for x in (1.0, 1.625, 250.0)] == ["1.00×", "1.62×", "250×"]
    assert [fmt_ci(c) for c in ((1.12, 1.224), (70.2, 75.6), (150.2, 160.7))] == ["1.12–1.22", "70.20–75.60", "150–161"]


def test_gpu_fidelity_section_counts_rows_of_one_ms_or_more_against_cuda_events(tmp_path):
    ev = lambda t, ratio: {"cuda_event_median_s": t / ratio, "cuda_event_rounds": 20, "id": f"row-{t}"}
    rows = [S.row("torch_nn", 2e-3, device="cuda", **ev(2e-3, 1.02)),  # within 5%
            S.row("torch", 1.2e-3, device="cuda", **ev(1.2e-3, 1.08)),  # 1 ms or more, outside
            S.row("torch", 7e-4, device="cuda", precision="float64", **ev(7e-4, 1.3)),  # under 1 ms: no bar
            S.row("torch", 3e-4, device="cuda", precision="bfloat16")]  # too short for events  # fmt: skip
    text, _ = build(tmp_path, {"gpu.json": S.run(rows, gpu={"name": "H100"})})
    sec = " ".join(text.split("## GPU timing: the harness against CUDA events")[1].split("\n## ")[0].split(" "))
    sec = re.sub(r" +", " ", sec)
    assert "Here **1 of 2** such rows agree." in sec
    assert "| row-0.0012 | 1.2 ms | 1.11 ms | 1.08× |" in sec and "row-0.002 |" not in sec
    assert "| 500 µs – 1 ms | 1 | 0 |" in sec and "Not counted" not in sec
    # events from a separate window (no cuda_event_rounds: an earlier harness) are not compared
    rows.append(S.row("torch", 4e-3, device="cuda", precision="tf32", cuda_event_median_s=2e-3, id="apart"))
    text, _ = build(tmp_path / "apart", {"gpu.json": S.run(rows, gpu={"name": "H100"})})
    assert "Here **1 of 2** such rows agree." in text and "Not counted: 1 rows" in text
    cpu_only, _ = build(tmp_path / "cpu", {"cpu.json": S.run(seed_rows())})
    assert "GPU timing" not in cpu_only


def test_runs_of_one_machine_with_no_rows_in_common_say_so_instead_of_an_empty_table(tmp_path):
    quick = S.run(seed_rows(), when="2026-11-01T10:00:00+00:00")
    deep = S.run([S.row("torch", 0.5, work="gru", sweep="deepbench", sizes={"B": 4, "T": 187, "H": 1536})],
                 when="2026-11-02T10:00:00+00:00")  # fmt: skip
    text, _ = build(tmp_path, {"quick.json": quick, "deep.json": deep})
    sec = text.split("## Comparison with earlier runs of the same machine")[1].split("\n## ")[0]
    assert "No rows in common (5 only in the old run, 1 only in the new)." in sec
    assert "_(no rows)_" not in sec and "faster," not in sec
