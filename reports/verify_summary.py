"""The verification summary from pytest's junit XML: tests per property and implementation, passed /
failed / skipped, with skip reasons and the failures by name.

A test id `test_forward_matches_float64_reference[gru-tf-float32-reset_after-B3T7I5H4]` in module
`verify.test_forward` reads as property `forward` (the module, less `test_`), op `gru`, implementation
`tensorflow` (the id's short name, impls.SHORT). Testsuite properties `headroom|<precision>|<implementation>`
(verify/headroom.py) give each bar's headroom: the worst observed error against the bar."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass

import pandas as pd

from impls import IMPLEMENTATIONS, SHORT

from .load import ReportInputError
from .markdown import table

_IMPL_BY_TOKEN = {**{v: k for k, v in SHORT.items()}, **{k: k for k in IMPLEMENTATIONS}}
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed")


@dataclass(frozen=True)
class TestResult:
    module: str
    function: str
    param: str
    property: str
    op: str
    impl: str
    outcome: str
    message: str

    @property
    def id(self) -> str:
        return f"{self.module}::{self.function}" + (f"[{self.param}]" if self.param else "")


def parse_name(classname: str, name: str) -> tuple[str, str, str, str, str, str]:
    """(module, function, param, property, op, impl) from a junit testcase's classname and name."""
    function, _, param = name.partition("[")
    param = param.removesuffix("]")
    parts = classname.split(".")
    # classname is `pkg.test_mod` or `pkg.test_mod.TestClass`
    mod_i = max((i for i, p in enumerate(parts) if p.startswith("test")), default=len(parts) - 1)
    module = parts[mod_i] if parts else ""
    prop = module.removeprefix("test_") or function.removeprefix("test_")
    tokens = param.split("-") if param else []
    impl = next((_IMPL_BY_TOKEN[t] for t in tokens if t in _IMPL_BY_TOKEN), "(none)")
    op = tokens[0] if tokens and tokens[0] not in _IMPL_BY_TOKEN else ""
    return ".".join(parts[: mod_i + 1]), function, param, prop, op, impl


def read_junit(path: str) -> list[TestResult]:
    try:
        root = ET.parse(path).getroot()
    except OSError as e:
        raise ReportInputError(f"{path}: cannot read ({e.strerror or e})") from e
    except ET.ParseError as e:
        raise ReportInputError(f"{path}: not XML ({e})") from e
    if root.tag not in ("testsuites", "testsuite"):
        raise ReportInputError(f"{path}: not pytest junit XML (root element <{root.tag}>, "
                               "expected <testsuites> or <testsuite>)")  # fmt: skip
    out = []
    for tc in root.iter("testcase"):
        module, function, param, prop, op, impl = parse_name(tc.get("classname", ""), tc.get("name", ""))
        outcome, message = "passed", ""
        for child in tc:
            if child.tag in ("failure", "error"):
                outcome, message = ("failed" if child.tag == "failure" else "error"), child.get("message", "")
                break
            if child.tag == "skipped":
                xfail = child.get("type") == "pytest.xfail"
                outcome, message = ("xfailed" if xfail else "skipped"), child.get("message", "")
        out.append(TestResult(module, function, param, prop, op, impl, outcome, message))
    if not out:
        raise ReportInputError(f"{path}: junit XML without any <testcase>")
    return out


def counts_table(results: list[TestResult]) -> pd.DataFrame:
    """Rows (property, implementation); columns tests and each outcome."""
    df = pd.DataFrame([{"property": r.property, "implementation": r.impl, "outcome": r.outcome} for r in results])
    t = pd.crosstab([df["property"], df["implementation"]], df["outcome"])
    t = t.reindex(columns=[o for o in OUTCOMES if o in t.columns or o != "xfailed"], fill_value=0)
    t.insert(0, "tests", t.sum(axis=1))
    return t.reset_index().astype(str)


def skip_reasons(results: list[TestResult]) -> pd.DataFrame:
    c = Counter((r.message.strip() or "(no reason given)", r.impl) for r in results if r.outcome == "skipped")
    return pd.DataFrame([{"reason": m, "implementation": i, "tests": str(n)} for (m, i), n in c.most_common()])


def failures(results: list[TestResult], limit: int = 50) -> tuple[pd.DataFrame, int]:
    bad = [r for r in results if r.outcome in ("failed", "error")]
    rows = [{"test": r.id, "outcome": r.outcome, "message": (r.message.strip().splitlines() or [""])[0][:200]}
            for r in bad[:limit]]  # fmt: skip
    return pd.DataFrame(rows), len(bad)


def totals(results: list[TestResult]) -> Counter:
    return Counter(r.outcome for r in results)


# --------------------------------------------------------------------------- each bar's headroom

HEADROOM_PREFIX = "headroom|"
"""junit testsuite properties `headroom|<precision>|<implementation>` written by verify/headroom.py."""


def read_headroom(path: str) -> list[dict]:
    """The headroom rows of one junit XML: precision, implementation, worst, bar, work, test, n."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        raise ReportInputError(f"{path}: cannot read junit XML ({e})") from e
    rows = []
    for prop in root.iter("property"):
        name = prop.get("name", "")
        if not name.startswith(HEADROOM_PREFIX):
            continue
        _, precision, impl = name.split("|", 2)
        try:
            v = json.loads(prop.get("value", ""))
            rows.append({"precision": precision, "implementation": impl, "worst": float(v["worst"]),
                         "bar": float(v["bar"]), "work": str(v.get("work", "")), "test": str(v.get("test", "")),
                         "n": int(v.get("n", 0))})  # fmt: skip
        except (ValueError, KeyError, TypeError) as e:
            raise ReportInputError(f"{path}: property {name!r} is not a headroom record ({e})") from e
    return rows


def headroom_table(paths: list[str]) -> pd.DataFrame:
    """Per (precision, implementation) over every file: the comparison closest to its bar (worst error / bar),
    the bar, the headroom (bar / worst), the work and test it came from, and how many comparisons were made."""
    best: dict[tuple[str, str], dict] = {}
    for path in paths:
        for r in read_headroom(path):
            key = (r["precision"], r["implementation"])
            ratio = r["worst"] / r["bar"] if r["bar"] else float("inf")
            n = best.get(key, {}).get("n", 0) + r["n"]
            if key not in best or ratio > best[key]["ratio"]:
                best[key] = {**r, "ratio": ratio}
            best[key]["n"] = n
    order = {p: i for i, p in enumerate(("float64", "float32", "tf32", "bfloat16", "float16"))}
    rows = [{"precision": p, "implementation": i, "worst error": f"{r['worst']:.2g}", "bar": f"{r['bar']:.0e}",
             "worst / bar": f"{r['ratio']:.2g}", "headroom": "none" if r["ratio"] >= 1 else
             (f"{1 / r['ratio']:.3g}x" if r["ratio"] > 0 else "all (exact)"), "closest": f"{r['work']}: {r['test']}" if r["work"] else r["test"],
             "comparisons": str(r["n"])}
            for (p, i), r in sorted(best.items(), key=lambda kv: (order.get(kv[0][0], 9), kv[0]))]  # fmt: skip
    return pd.DataFrame(rows)


def headroom_section(paths: list[str]) -> list[str]:
    """Markdown lines for the report's verification section: each bar's headroom per precision and voice."""
    df = headroom_table(paths)
    if df.empty:
        return ["Headroom: this junit XML carries no headroom records (they come from `pytest verify/`).", ""]
    return [("Each bar's headroom: per precision and implementation, the comparison that came closest to its bar "
            "(the normwise relative error against NumPy float64, impls/contract/tolerance.py), and how far under the bar "
            "it stayed. A bar with little headroom is one a change may trip; one with 1e5x is one that would not "
            "notice a small bug (verify/test_bars.py shows what each still rejects)."), "",
            table(df, escape_cells=True)]  # fmt: skip
