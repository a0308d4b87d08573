"""The verification section's headroom table (junit testsuite properties from verify/headroom.py) and the
permissions of files the report builder writes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from reports import build, verify_summary
from reports.load import ReportInputError
from reports.markdown import atomic_write
from verify import headroom


def _junit(tmp_path, props: dict[str, dict], name="verify.xml"):
    lines = "".join(f'<property name="{k}" value="{json.dumps(v).replace(chr(34), "&quot;")}" />' for k, v in props.items())
    xml = (f'<?xml version="1.0"?><testsuites><testsuite name="pytest" tests="1"><properties>{lines}</properties>'
           '<testcase classname="verify.test_forward" name="test_forward_matches_float64_reference[gru-tf-float32-x]" />'
           "</testsuite></testsuites>")  # fmt: skip
    path = tmp_path / name
    path.write_text(xml)
    return str(path)


def _rec(worst, bar, n, test="t"):
    return {"worst": worst, "bar": bar, "ratio": worst / bar, "work": "gru", "test": test, "n": n}


def test_headroom_is_the_closest_call_per_precision_and_voice_over_every_file(tmp_path):
    a = _junit(tmp_path, {"headroom|float32|torch": _rec(1e-6, 2e-5, 10, "a"), "headroom|float64|keras": _rec(1e-15, 1e-10, 4)})
    b = _junit(tmp_path, {"headroom|float32|torch": _rec(4e-6, 2e-5, 5, "b")}, "second.xml")
    df = verify_summary.headroom_table([a, b])
    rows = {(r["precision"], r["implementation"]): r for r in df.to_dict("records")}
    assert list(df["precision"]) == ["float64", "float32"]  # precisions in the table's order
    torch = rows[("float32", "torch")]
    assert torch["worst error"] == "4e-06" and torch["headroom"] == "5x" and torch["comparisons"] == "15"
    assert torch["closest"] == "gru: b" and rows[("float64", "keras")]["headroom"] == "1e+05x"


def test_the_verification_section_states_the_headroom(tmp_path):
    path = _junit(tmp_path, {"headroom|float32|tensorflow": _rec(2.5e-5, 2e-5, 3)})
    text = "\n".join(build.verification_section({path: verify_summary.read_junit(path)}))
    assert "Each bar's headroom" in text and "| float32" in text and "none" in text  # over the bar: no headroom


def test_without_headroom_records_the_section_says_so(tmp_path):
    path = _junit(tmp_path, {})
    assert "no headroom records" in "\n".join(verify_summary.headroom_section([path]))


def test_a_broken_headroom_record_names_the_file_and_property(tmp_path):
    path = _junit(tmp_path, {"headroom|float32|torch": {"bar": 2e-5}})
    with pytest.raises(ReportInputError, match=r"verify\.xml: property 'headroom\|float32\|torch'"):
        verify_summary.headroom_table([path])


def test_the_verify_book_keeps_the_comparison_closest_to_its_bar():
    saved = dict(headroom.BOOK)
    headroom.BOOK.clear()
    try:
        headroom.record("float32", "torch", "gru", 1e-6, 2e-5, "small")
        headroom.record("float32", "torch", "adam_step", 5e-8, 1e-7, "closer to its own bar")
        headroom.record("float32", "torch", "gru", 2e-6, 2e-5, "larger error, further from its bar")
        (name, value), = headroom.properties()
        v = json.loads(value)
        assert name == "headroom|float32|torch" and v["test"] == "closer to its own bar" and v["n"] == 3
    finally:
        headroom.BOOK.clear()
        headroom.BOOK.update(saved)


# --------------------------------------------------------------------------- file permissions


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_a_new_report_gets_the_mode_a_plain_write_gives(tmp_path, umask):
    old = os.umask(umask)
    try:
        plain, atomic = tmp_path / "plain.md", tmp_path / "report.md"
        plain.write_text("x")
        atomic_write(atomic, "x")
        atomic_write(tmp_path / "fig.png", lambda tmp: Path(tmp).write_bytes(b"png"))  # as plots.draw writes
    finally:
        os.umask(old)
    want = stat.S_IMODE(plain.stat().st_mode)
    assert want == 0o666 & ~umask
    assert stat.S_IMODE(atomic.stat().st_mode) == want and stat.S_IMODE((tmp_path / "fig.png").stat().st_mode) == want


def test_rewriting_a_report_keeps_its_permissions(tmp_path):
    target = tmp_path / "report.md"
    target.write_text("old")
    target.chmod(0o640)
    atomic_write(target, "new")
    assert target.read_text() == "new" and stat.S_IMODE(target.stat().st_mode) == 0o640
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_verify_on_two_workers_writes_the_same_headroom_as_one_process(tmp_path):
    """`pytest verify/ -n auto`: each xdist worker hands its book to the controller, which writes the properties;
    the closest call per (precision, voice) and the count of comparisons match a run in one process."""
    pytest.importorskip("xdist", reason="pytest-xdist is what `pytest verify/ -n auto` needs")
    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", PYTHONHASHSEED="0")
    select = ["verify/test_forward.py", "-k", "dense and (numpy or torch) and not torch_nn"]
    books = []
    for extra, name in (([], "one.xml"), (["-n", "2"], "two.xml")):
        cmd = [sys.executable, "-m", "pytest", *select, "-q", "-p", "no:cacheprovider", *extra,
               f"--junitxml={tmp_path / name}"]  # fmt: skip
        r = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=300, env=env, check=False)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        books.append({(x["precision"], x["implementation"]): (x["worst"], x["n"])
                      for x in verify_summary.read_headroom(str(tmp_path / name))})  # fmt: skip
    one, two = books
    assert set(one) >= {("float64", "torch"), ("float32", "torch")}
    assert two == one
