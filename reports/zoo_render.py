"""reports/ZOO.md and the README's supported-models table, from the zoo's results (reports/zoo.py writes them;
rendering needs no framework, so `python -m reports zoo --no-run` re-renders without running anything).

A port's cell: its relative max error against the source on the same input (agreed at or under BAR, **off**
above it), or why there is none: refused (`nnparity port` exit 2: the importer or the target declines, its one
line), port failed (any other exit, or stopped by the time or memory limit), load failed (the port did not load or
run in its own framework alone). Each reason is stated once, numbered, with the models it holds for.
"""

from __future__ import annotations

import re
from pathlib import Path

from .markdown import escape

BAR = 2e-5  # impls.contract.tolerance's float32 bar, restated so that rendering needs no framework
TARGETS = ("torch", "keras", "onnx", "flax")
NAMES = {"torch": "torch", "keras": "Keras", "onnx": "ONNX", "flax": "Flax"}
SOURCES = {"torch": "torchvision", "keras": "keras.applications", "onnx": "ONNX light models"}
BEGIN, END = "<!-- zoo:begin (python -m reports zoo --readme README.md writes this section) -->", "<!-- zoo:end -->"
REASON_CHARS = 400


def port_status(cell: dict | None) -> str:
    """agreed, off, refused, port failed, load failed, not run."""
    if cell is None or cell.get("rc") is None:
        return "not run"
    if cell["rc"] == 2 and not cell.get("stopped"):
        return "refused"
    if cell["rc"] != 0:
        return "port failed"
    load = cell.get("load") or {}
    if load.get("rc") != 0:
        return "load failed"
    return "agreed" if load.get("rel", float("inf")) <= BAR else "off"


def certify_status(cert: dict | None) -> str:
    """pass (exit 0), fail (exit 1), refused (exit 2), failed (anything else, stopped included), not run."""
    if cert is None or cert.get("rc") is None:
        return "not run"
    return {0: "pass", 1: "fail", 2: "refused"}.get(cert["rc"], "failed")


def _why(cell: dict | None) -> str | None:
    if cell is None:
        return None
    if cell.get("error"):
        return cell["error"]
    load = cell.get("load") or {}
    return load.get("error")


_SPEC = re.compile(r"^(net\.py:make|net\.keras|net\.onnx|port\.keras|port\.onnx|port_torch|port_flax): ")


def _text(text: str) -> str:
    """A reason without the model's own file name in front (every model's is net.py:make, net.keras or net.onnx)."""
    return _SPEC.sub("", text.strip())


class Reasons:
    """Numbered reasons, each stated once, with the models it holds for."""

    def __init__(self) -> None:
        self.texts: dict[str, int] = {}
        self.models: dict[int, list[str]] = {}

    def ref(self, text: str, model: str) -> str:
        text = _text(text)
        text = text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"
        n = self.texts.setdefault(text, len(self.texts) + 1)
        self.models.setdefault(n, [])
        if model not in self.models[n]:
            self.models[n].append(model)
        return f"[{n}](#r{n})"

    def lines(self) -> list[str]:
        return [f"{n}. <a id=\"r{n}\"></a>{escape(text)} — {', '.join(self.models[n])}" for text, n in self.texts.items()]


def _port_cell(res: dict, target: str, reasons: Reasons) -> str:
    if target == res["source"]:
        return "source"
    cell = res["ports"].get(target)
    status = port_status(cell)
    if status == "agreed":
        return f"{cell['load']['rel']:.1e}"
    if status == "off":
        return f"**{cell['load']['rel']:.1e} off**"
    if status == "not run":
        return "not run" + (f" {reasons.ref(cell['error'], res['name'])}" if cell and cell.get("error") else "")
    return f"{status} {reasons.ref(_why(cell) or status, res['name'])}"


def _certify_cell(res: dict, reasons: Reasons) -> str:
    cert = res.get("certify")
    status = certify_status(cert)
    if status == "pass":
        return "PASS"
    if status == "fail":
        fd = cert.get("first_diverging_layer")
        first = (cert.get("failures") or ["?"])[0]
        return (f"**FAIL** ({cert.get('n_failures', 0)} checks; {reasons.ref(first, res['name'])}"
                + (f"; first diverging layer `{escape(fd)}`" if fd else "") + ")")  # fmt: skip
    if status == "not run":
        return "not run" + (f" {reasons.ref(cert['error'], res['name'])}" if cert and cert.get("error") else "")
    return f"{status} {reasons.ref(cert.get('error') or status, res['name'])}"


def _times(res: dict) -> str:
    parts = [f"prepare {res['prepare']['s']:.0f}"]
    ports = [(t, res["ports"][t]) for t in TARGETS if res["ports"].get(t, {}).get("rc") is not None]  # column order
    if ports:
        parts.append("port " + "/".join(f"{c['s']:.0f}" for _, c in ports))
    loads = [c["load"] for _, c in ports if c.get("load")]
    if loads:
        parts.append("load " + "/".join(f"{c['s']:.0f}" for c in loads))
    if res.get("certify") and res["certify"].get("rc") is not None:
        parts.append(f"certify {res['certify']['s']:.0f}")
    return ", ".join(parts)


def _own(res: dict) -> str:
    own = res["prepare"].get("own_float32_error")
    if own is not None:
        return f"{own:.1e}"
    return "-" if res["source"] == "onnx" else "not measured"  # a run from before prepare measured it


def summary_line(res: dict) -> str:
    """One line for the progress log: each target's status and the certificate's."""
    bits = [f"{t} {port_status(res['ports'].get(t))}" for t in TARGETS if t != res["source"]]
    if res["prepare"]["rc"] != 0:
        return f"prepare failed: {res['prepare']['error']}"
    return ", ".join(bits) + f"; certify {certify_status(res.get('certify'))}"


def ordered(results: dict) -> list[dict]:
    """The results in the zoo's own order (reports/zoo_models.py), models no longer listed there left out."""
    from .zoo_models import MODELS

    return [results["models"][e.name] for e in MODELS if e.name in results["models"]]


def totals(results: dict) -> dict:
    """{(source, target): {status: count}, ("certify", source): {status: count}} over the models shown."""
    out: dict = {}
    for res in ordered(results):
        for t in TARGETS:
            if t == res["source"]:
                continue
            status = "prepare failed" if res["prepare"]["rc"] != 0 else port_status(res["ports"].get(t))
            d = out.setdefault((res["source"], t), {})
            d[status] = d.get(status, 0) + 1
        c = out.setdefault(("certify", res["source"]), {})
        s = "prepare failed" if res["prepare"]["rc"] != 0 else certify_status(res.get("certify"))
        c[s] = c.get(s, 0) + 1
    return out


def _totals_table(results: dict) -> list[str]:
    t = totals(results)
    lines = ["| source | target | models | agreed (≤ 2e-5) | off | refused | port failed | load failed | not run |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for src in SOURCES:
        for tgt in TARGETS:
            d = t.get((src, tgt))
            if not d:
                continue
            cols = ["agreed", "off", "refused", "port failed", "load failed"]
            rest = sum(v for k, v in d.items() if k not in cols)
            lines.append(f"| {SOURCES[src]} | {NAMES[tgt]} | {sum(d.values())} | "
                         + " | ".join(str(d.get(k, 0)) for k in cols) + f" | {rest} |")  # fmt: skip
    lines += ["", "| source | models | certify exit 0 (PASS) | exit 1 (FAIL) | exit 2 (refused) | failed or stopped | not run |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for src in SOURCES:
        d = t.get(("certify", src))
        if d:
            rest = sum(v for k, v in d.items() if k not in ("pass", "fail", "refused", "failed"))
            lines.append(f"| {SOURCES[src]} | {sum(d.values())} | {d.get('pass', 0)} | {d.get('fail', 0)} | "
                         f"{d.get('refused', 0)} | {d.get('failed', 0)} | {rest} |")  # fmt: skip
    return lines


def _step_runs(res: dict) -> set:
    steps = [res.get("prepare"), *res.get("ports", {}).values(), res.get("certify")]
    return {b.get("run", res.get("run")) for b in steps if b} | {res.get("run")}


def _runs(results: dict) -> list[str]:
    shown = [_step_runs(res) for res in ordered(results)]
    lines = []
    for k, run in enumerate(results["runs"]):
        n = sum(1 for s in shown if k in s)
        if not n:
            continue
        ceiling = f"matmul ceiling {run.get('matmul_gflops_start', '?')} -> {run.get('matmul_gflops_end', '?')} GFLOP/s"
        busy = "; ".join(run.get("contention") or []) or "no contention flagged"
        lines.append(f"- `{run['command']}` at commit `{run['commit']}`, {run['started']} to {run.get('finished', '(stopped)')}"
                     f" (steps of {n} of the models below): {run.get('cpu') or 'unknown CPU'}, {run.get('cores')} cores; "
                     f"{ceiling} (NumPy float32 1024³ matmul on every core, at the run's start and end); {busy}")  # fmt: skip
    return lines


def render(results: dict) -> str:
    reasons = Reasons()
    rows = []
    for res in ordered(results):
        name = res["name"] + ("" if res.get("listed", True) else " *")
        shape = "×".join(map(str, res["input_shape"]))
        if res["prepare"]["rc"] != 0:
            why = reasons.ref(res["prepare"]["error"] or "prepare failed", res["name"])
            rows.append(f"| `{name}` | {shape} | prepare failed {why} | | | | | | {_times(res)} |")
            continue
        cells = [_port_cell(res, t, reasons) for t in TARGETS]
        own = res["prepare"].get("own_float32_error")
        rows.append(f"| `{name}` | {shape} | " + " | ".join(cells) + f" | {_own(res)} | "
                    f"{_certify_cell(res, reasons)} | {_times(res)} |")  # fmt: skip
    return "\n".join([
        "# The model zoo: each model ported, loaded by its own framework alone, and certified", "",
        "Written by `python -m reports zoo` (reports/zoo.py; the models and their seeding: reports/zoo_models.py; "
        "the results: reports/zoo.json). The runs behind this table:", "", *_runs(results), "",
        *([f"Put together from those runs' results by `{results['assembled']}`.", ""] if results.get("assembled") else []),
        "Each model is built with seeded random weights (nothing downloaded; BatchNorm statistics and every "
        "constant-initialised parameter drawn as a trained model's look: variance positive and not 1, mean not 0), "
        "saved as its users have it (torchvision: a `file.py` with `make()`; keras.applications: a `.keras` file; "
        "ONNX: the `light_*.onnx` that the onnx wheel ships, weights redrawn, batch 3), then `nnparity port` to every "
        "other framework. Each port is loaded by its own framework in `python -I` with nnparity's packages made "
        "unimportable, and run on the same seeded input (batch 3) as the source; the cell is the relative max error "
        f"max|port − source| / max|source| in float32 (bar {BAR:g}). The last column is `nnparity certify "
        "--no-bench`'s verdict (every voice against the float64 reference: forward, each layer, gradients, an "
        "Adam step). The source's own float32 error is its float32 output's relative max distance from the same "
        "source computing in float64 (torch `model.double()`, Keras with float64 dtype policies; `-` for ONNX, whose "
        "CPU Conv is float32 only): a port cannot be expected to come closer to the source than that, and where it "
        "exceeds the bar the bar is below float32's own error on that model. Times are wall seconds of each command (prepare: building the model and its file; port and "
        "load per target in column order) on a machine other jobs shared. `*`: a model of the same family that "
        "issue 24 does not list.", "",
        "## Totals", "", *_totals_table(results), "",
        "## Models", "",
        "| model | input (batch first, source layout) | torch | Keras | ONNX | Flax | source's own float32 error | certify "
        "| seconds |", "|---|---|---|---|---|---|---|---|---|", *rows, "",
        "## Reasons", "", "Each refusal or failure as the command said it (its one line, the model's folder left out).",
        "", *reasons.lines(), "",
    ])  # fmt: skip


def _mark(status: str) -> str:
    return {"agreed": "✓", "pass": "✓", "refused": "refused", "fail": "FAIL", "off": "off"}.get(status, status)


def readme_table(results: dict, md_path: Path | None = None, readme: Path | None = None) -> str:
    """The README's supported-models section body: one row a model, ✓ where the port agreed (or certify passed)."""
    link = "reports/ZOO.md"
    if md_path is not None and readme is not None:
        try:
            link = str(Path(md_path).resolve().relative_to(Path(readme).resolve().parent))
        except ValueError:
            link = str(md_path)
    res_all = ordered(results)
    ported = [r for r in res_all if r["prepare"]["rc"] == 0
              and all(port_status(r["ports"].get(t)) == "agreed" for t in TARGETS if t != r["source"])]  # fmt: skip
    certified = [r for r in res_all if certify_status(r.get("certify")) not in ("not run",)]
    passed = [r for r in certified if certify_status(r.get("certify")) == "pass"]
    lines = [f"{len(ported)} of {len(res_all)} zoo models port to every other framework and agree with the source "
             f"within {BAR:g} (each port loaded by its own framework alone); {len(certified)} were certified "
             f"({len(passed)} PASS), the rest not yet. The errors, the reasons and the commands are in "
             f"[{link}]({link}). ✓: agreed / PASS; off: over the bar; `*`: not in issue 24's list.", "",
             "| model | torch | Keras | ONNX | Flax | certify |", "|---|---|---|---|---|---|"]  # fmt: skip
    for r in res_all:
        name = r["name"] + ("" if r.get("listed", True) else " *")
        if r["prepare"]["rc"] != 0:
            lines.append(f"| `{name}` | prepare failed | | | | |")
            continue
        cells = ["source" if t == r["source"] else _mark(port_status(r["ports"].get(t))) for t in TARGETS]
        lines.append(f"| `{name}` | " + " | ".join(cells) + f" | {_mark(certify_status(r.get('certify')))} |")
    return "\n".join(lines)


def replace_section(text: str, body: str) -> str:
    """`text` with everything between BEGIN and END replaced by `body`. Raises ValueError without both markers."""
    if BEGIN not in text or END not in text or text.index(BEGIN) > text.index(END):
        raise ValueError(f"no {BEGIN} ... {END} section")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{body}\n{END}{tail}"


__all__ = ["BAR", "BEGIN", "END", "certify_status", "port_status", "readme_table", "render", "replace_section",
           "summary_line", "totals"]
