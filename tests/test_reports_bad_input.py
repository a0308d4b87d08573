"""Bad input to the report builder: a clear message naming the file and the problem, exit status 2,
and no report (nor a temporary file) left behind; an earlier report at the same path stays intact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reports import __main__ as cli
from reports.markdown import atomic_write
from tests import reports_synth as S


def _good() -> dict:
    return S.run([S.row("torch", 0.01), S.row("numpy", 0.02, name="test_seed_gru_model[numpy-row]")])


def _without(field: str) -> dict:
    data = _good()
    section, key = field.split(".")
    del data["benchmarks"][1][section][key]
    return data


def _only_ceilings() -> dict:
    return S.run([S.ceiling("matmul", 0.01, flops=10**9)])


def _foreign() -> dict:  # a real pytest-benchmark file from some other project
    data = _good()
    for b in data["benchmarks"]:
        b["extra_info"] = {}
    return data


def _schema(n) -> dict:
    data = _good()
    for b in data["benchmarks"]:
        b["extra_info"]["schema"] = n
    return data


def _bad_value() -> dict:
    data = _good()
    data["benchmarks"][1]["extra_info"]["err_ok"] = "yes"
    return data


def _bad_paired(**change) -> dict:
    data = S.run(S.paired_rows({"torch": 0.01, "numpy": 0.02}))
    p = data["benchmarks"][1]["extra_info"]["paired"]
    for k, v in change.items():
        if v is None and k != "ci95":
            del p[k]
        else:
            p[k] = v
    return data


# name -> (files to write: {name: JSON data or raw text}, substrings the message must contain)
CASES = {
    "not-json": ({"a.json": "{not json"}, ["a.json: not JSON"]),
    "json-list": ({"a.json": "[1, 2]"}, ["a.json: not pytest-benchmark JSON", "top level is a list"]),
    "missing-top-keys": ({"a.json": '{"benchmarks": []}'},
                         ["a.json: not pytest-benchmark JSON", "machine_info, commit_info, datetime, version"]),
    "no-benchmarks": ({"a.json": S.run([])}, ["a.json: run has no rows", "'benchmarks' list is empty"]),
    "only-ceilings": ({"a.json": _only_ceilings()}, ["a.json: run has no rows", "none with extra_info.kind 'row'"]),
    "foreign-benchmark-json": ({"a.json": _foreign()}, ["a.json: not nnparity benchmark JSON"]),
    "row-missing-flops": ({"a.json": _without("extra_info.flops")},
                          ["a.json:", "test_seed_gru_model[numpy-row]", "missing field extra_info.flops"]),
    "row-missing-median": ({"a.json": _without("stats.median")},
                           ["a.json:", "test_seed_gru_model[numpy-row]", "missing field stats.median"]),
    "row-bad-value": ({"a.json": _bad_value()}, ["test_seed_gru_model[numpy-row]", "extra_info.err_ok='yes'"]),
    "unsupported-schema": ({"a.json": _schema(2)}, ["a.json: row schema 2 is not supported"]),
    "different-schemas": ({"a.json": _good(), "b.json": _schema(2)},
                          ["different schema versions", "a.json (schema 1)", "b.json (schema 2)"]),
    "missing-file": ({}, ["nope.json: cannot read"]),
    "paired-missing-log-ratios": ({"a.json": _bad_paired(log_ratios=None)}, ["extra_info.paired lacks log_ratios"]),
    "paired-inverted-interval": ({"a.json": _bad_paired(ci95=[1.3, 1.2])}, ["extra_info.paired.ci95=[1.3, 1.2]"]),
    "paired-blocks-mismatch": ({"a.json": _bad_paired(blocks=3)}, ["3 blocks need as many finite numbers"]),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_names_file_and_problem_and_writes_nothing(tmp_path, capsys, case):
    files, needles = CASES[case]
    paths = [S.write(tmp_path / name, data) for name, data in files.items()] or [str(tmp_path / "nope.json")]
    out = tmp_path / "out" / "report.md"
    out.parent.mkdir()
    out.write_text("earlier report\n")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert cli.main([*paths, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    for needle in needles:
        assert needle in err, (needle, err)
    assert out.read_text() == "earlier report\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # no temp file, no PNG


def test_bad_verify_xml_stops_before_writing(tmp_path, capsys):
    run = S.write(tmp_path / "run.json", _good())
    xml = S.write(tmp_path / "verify.xml", "<testsuites><testcase")
    out = tmp_path / "report.md"
    assert cli.main([run, "--verify", xml, "-o", str(out)]) == 2
    assert f"{xml}: not XML" in capsys.readouterr().err
    assert not out.exists()


def test_too_many_problems_are_counted_not_all_listed(tmp_path, capsys):
    data = S.run([S.row("torch", 0.01, name=f"test_x[{i}]") for i in range(12)])
    for b in data["benchmarks"]:
        del b["extra_info"]["bytes"]
    path = S.write(tmp_path / "a.json", json.dumps(data))
    assert cli.main([path, "-o", str(tmp_path / "r.md")]) == 2
    err = capsys.readouterr().err
    assert "test_x[0]" in err and "(and 4 more)" in err and "test_x[11]" not in err


def test_atomic_write_leaves_the_old_file_on_failure(tmp_path):
    target = tmp_path / "r.md"
    target.write_text("old")

    def half_then_crash(tmp: str) -> None:
        Path(tmp).write_text("half a rep")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, half_then_crash)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["r.md"]
    atomic_write(target, "new")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["r.md"]
