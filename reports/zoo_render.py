"""reports/ZOO.md and the README's supported-models table, from the zoo's results (reports/zoo.py writes them;
rendering needs no framework, so `python -m reports zoo --no-run` re-renders without running anything).

A port's cell: its relative max error against the source on the same input (agreed at or under BAR; above it
rounding where the float64 runs explain it, see port_status, else **off**), or why there is none: refused
(`nnparity port` exit 2: the importer or the target declines, its one line), port failed (any other exit, or
stopped by the time or memory limit), load failed (the port did not load or run in its own framework alone). Each reason is stated once, numbered, with the models it holds for.
"""

from __future__ import annotations

import re
from pathlib import Path

from .markdown import escape

BAR = 2e-5  # impls.contract.tolerance's float32 bar, restated so that rendering needs no framework
BAR64 = 1e-10
"""A port run in float64 computes the source's function when it agrees with the source run in float64 this closely
(the Keras ResNet101 torch port: 2.1e-13, where float32 differs by 1.5e-4)."""
ONNX64 = ("ONNX's float64 run (ONNX Runtime's CPU Conv is float32 only) is the same graph with every float32 tensor "
          "made float64, run by the onnx package's reference evaluator (reports/onnx_float64.py), with four of its "
          "ops replaced where onnx 1.23's are not the specification's (BatchNormalization before opset 14 uses the "
          "batch's statistics; LRN sums squares for the first batch-size channels only; MaxPool with ceil_mode "
          "sizes some outputs one too large; Softmax before opset 13 is opset 13's), each measured against ONNX "
          "Runtime there.")
TARGETS = ("torch", "keras", "onnx", "flax")
NAMES = {"torch": "torch", "keras": "Keras", "onnx": "ONNX", "flax": "Flax"}
SOURCES = {"torch": "torchvision", "keras": "keras.applications", "onnx": "ONNX light models"}
BEGIN, END = "<!-- zoo:begin (python -m reports zoo --readme README.md writes this section) -->", "<!-- zoo:end -->"
REASON_CHARS = 400


def port_status(cell: dict | None, source_own32: float | None = None) -> str:
    """agreed, rounding, off, refused, port failed, load failed, not run.

    Over BAR, a port is "rounding" when both hold: run in float64 it agrees with the source run in float64 within
    BAR64 (rel64: it computes the same function), and its float32 difference from the source is at most the two
    frameworks' own float32 errors together (`source_own32`: the source's float32 output against its float64 one;
    own32: the port's, likewise), each measured, never assumed. Anything else over BAR is "off"."""
    if cell is None or cell.get("rc") is None:
        return "not run"
    if cell["rc"] == 2 and not cell.get("stopped"):
        return "refused"
    if cell["rc"] != 0:
        return "port failed"
    load = cell.get("load") or {}
    if load.get("rc") != 0:
        return "load failed"
    rel = load.get("rel", float("inf"))
    if rel <= BAR:
        return "agreed"
    return "rounding" if explained(load, source_own32) else "off"


def own_sum(source_own32: float | None, own32: float | None, rel64: float | None) -> float | None:
    """The two frameworks' own float32 errors together, in the float32 difference's units: each error is relative to
    its own output's largest value (the source's float64, the port's float64) and rel to the source's float32 one,
    and those maxima differ by at most the errors themselves, so (s + p (1 + r64) + r64) / (1 - s), s the source's
    own error, p the port's, r64 their float64 difference. Without that conversion the plain sum s + p fell 5.5e-12
    short (6.5e-8 of it) of keras/InceptionV3 -> torch's 8.5e-5, whose float64 outputs agree to 3.4e-14: the two
    float32 errors, opposite at the same output, add up exactly there. None where a number is missing."""
    if None in (source_own32, own32, rel64) or source_own32 >= 1:
        return None
    return (source_own32 + own32 * (1 + rel64) + rel64) / (1 - source_own32)


def explained(load: dict, source_own32: float | None) -> bool:
    """Whether a port's float32 difference over BAR is float32 rounding (port_status's rule)."""
    rel, rel64, own32 = load.get("rel"), load.get("rel64"), load.get("own32")
    bound = own_sum(source_own32, own32, rel64)
    if rel is None or bound is None:
        return False
    return rel64 <= BAR64 and rel <= bound


def status(res: dict, target: str) -> str:
    """The port to `target`'s status (port_status), with the source's own float32 error the model's prepare measured."""
    return port_status(res["ports"].get(target), res["prepare"].get("own_float32_error"))


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
    st = status(res, target)
    if st == "agreed":
        return f"{cell['load']['rel']:.1e}"
    if st == "rounding":
        return f"{cell['load']['rel']:.1e} ≈"
    if st == "off":
        return f"**{cell['load']['rel']:.1e} off**"
    if st == "not run":
        return "not run" + (f" {reasons.ref(cell['error'], res['name'])}" if cell and cell.get("error") else "")
    return f"{st} {reasons.ref(_why(cell) or st, res['name'])}"


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
    bits = [f"{t} {status(res, t)}" for t in TARGETS if t != res["source"]]
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
            st = "prepare failed" if res["prepare"]["rc"] != 0 else status(res, t)
            d = out.setdefault((res["source"], t), {})
            d[st] = d.get(st, 0) + 1
        c = out.setdefault(("certify", res["source"]), {})
        s = "prepare failed" if res["prepare"]["rc"] != 0 else certify_status(res.get("certify"))
        c[s] = c.get(s, 0) + 1
    return out


def _totals_table(results: dict) -> list[str]:
    t = totals(results)
    lines = [("| source | target | models | agreed (≤ 2e-5) | rounding (≈) | off | refused | port failed | load failed "
              "| not run |"), "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for src in SOURCES:
        for tgt in TARGETS:
            d = t.get((src, tgt))
            if not d:
                continue
            cols = ["agreed", "rounding", "off", "refused", "port failed", "load failed"]
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


def _e(v: float | None, none: str = "-") -> str:
    return none if v is None else f"{v:.1e}"


def _missing(load: dict, what: str) -> str:
    """Why a float64 number (`what`: "source", "port" or "both") is missing: the port's float64 run failed (its
    reason), or it was not measured (a result from before the float64 run its framework has now: ONNX's came last)."""
    said = load.get("float64")
    if what != "source" and said not in (None, "saved") and not said.startswith("ONNX Runtime's CPU Conv"):
        return f"- ({escape(said)})"
    return "not measured"


def float64_rows(results: dict) -> list[dict]:
    """Every port over BAR (rounding or off), with the float64 numbers its status rests on."""
    rows = []
    for res in ordered(results):
        if res["prepare"]["rc"] != 0:
            continue
        for t in TARGETS:
            st = status(res, t)
            if st in ("rounding", "off"):
                rows.append({"res": res, "target": t, "status": st, "load": res["ports"][t]["load"],
                             "source_own32": res["prepare"].get("own_float32_error")})  # fmt: skip
    return rows


def _float64_section(results: dict) -> list[str]:
    rows = float64_rows(results)
    measured = [(r["ports"][t]["load"]["rel64"], r["name"], t) for r in ordered(results) for t in TARGETS
                if ((r["ports"].get(t) or {}).get("load") or {}).get("rel64") is not None]  # fmt: skip
    lines = ["## Over the bar: the float64 runs", ""]
    if measured:
        over = {(r["res"]["name"], r["target"]) for r in rows}
        said = [f"{len(measured)} ports ran in float64 beside a float64 source."]
        for label, group in (("Over the bar, where the rule reads it", [m for m in measured if m[1:] in over]),
                             ("Under the bar, where no rule reads it", [m for m in measured if m[1:] not in over])):
            if group:
                worst = max(group)
                said.append(f"{label}, the largest float64 difference from the source is {worst[0]:.1e} ({worst[1]} "
                            f"→ {NAMES[worst[2]]}).")  # fmt: skip
        lines += [" ".join(said), ""]
    if not rows:
        return [*lines, "No port is over the bar.", ""]
    lines += [("| model | port | float32: port vs source | float64: port vs source | source's own float32 error | "
               "port's own float32 error | their sum | status |"), "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        load, src = r["load"], r["source_own32"]
        own = load.get("own32")
        total = own_sum(src, own, load.get("rel64"))
        res = r["res"]
        lines.append(f"| `{res['name']}` | {NAMES[r['target']]} | {load['rel']:.1e} | "
                     f"{_e(load.get('rel64'), _missing(load, 'both'))} | {_e(src, _missing(load, 'source'))} | "
                     f"{_e(own, _missing(load, 'port'))} | {_e(total)} | "
                     + ("rounding ≈" if r["status"] == "rounding" else "**off**") + " |")  # fmt: skip
    return [*lines, ""]


def _rule(results: dict) -> str:
    """The legend sentence for rounding, with the measured numbers of the largest float32 difference it explains."""
    rounding = [r for r in float64_rows(results) if r["status"] == "rounding"]
    example = ""
    if rounding:
        r = max(rounding, key=lambda r: r["load"]["rel"])
        load = r["load"]
        example = (f" (measured here, {r['res']['name']} → {NAMES[r['target']]}: {load['rel']:.1e} apart in float32, "
                   f"{load['rel64']:.1e} in float64; the source's own float32 error {r['source_own32']:.1e}, the "
                   f"port's {load['own32']:.1e})")  # fmt: skip
    return (f"Over the bar, each framework's float64 run tells rounding from error: a port is **rounding** (≈) when, "
            f"run in float64 (torch `.double()`, Keras with float64 dtype policies, Flax under `jax_enable_x64`, "
            f"ONNX by onnx's reference evaluator), it "
            f"agrees with the source run in float64 within {BAR64:g} (it computes the source's function), and its "
            f"float32 difference is at most the source's own float32 error plus the port's own (each framework's "
            f"float32 output against its own float64 output, on this model and input; their sum put in the float32 "
            f"difference's units, reports/zoo_render.py `own_sum`): the issue's {BAR:g} bar is "
            f"below what float32 itself errs by on these deep models{example}. Anything else over the bar stays "
            f"**off**. {ONNX64}")


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
        "source computing in float64 (torch `model.double()`, Keras with float64 dtype policies, ONNX's graph made "
        "float64 and run by onnx's reference evaluator): a port cannot be expected to come closer to the source "
        "than that. "
        f"{_rule(results)} Times are wall seconds of each command (prepare: building the model and its file; port and "
        "load per target in column order) on a machine other jobs shared. `*`: a model of the same family that "
        "issue 24 does not list.", "",
        "## Totals", "", *_totals_table(results), "",
        "## Models", "",
        "| model | input (batch first, source layout) | torch | Keras | ONNX | Flax | source's own float32 error | certify "
        "| seconds |", "|---|---|---|---|---|---|---|---|---|", *rows, "",
        *_float64_section(results),
        "## Reasons", "", "Each refusal or failure as the command said it (its one line, the model's folder left out).",
        "", *reasons.lines(), "",
    ])  # fmt: skip


def _mark(status: str) -> str:
    return {"agreed": "✓", "rounding": "≈", "pass": "✓", "refused": "refused", "fail": "FAIL", "off": "off"}.get(status,
                                                                                                              status)


def readme_table(results: dict, md_path: Path | None = None, readme: Path | None = None) -> str:
    """The README's supported-models section body: one row a model, ✓ where the port agreed (or certify passed), ≈
    where it is over the bar by float32 rounding alone (port_status)."""
    link = "reports/ZOO.md"
    if md_path is not None and readme is not None:
        try:
            link = str(Path(md_path).resolve().relative_to(Path(readme).resolve().parent))
        except ValueError:
            link = str(md_path)
    res_all = ordered(results)
    def every(r: dict, ok: tuple[str, ...]) -> bool:
        return r["prepare"]["rc"] == 0 and all(status(r, t) in ok for t in TARGETS if t != r["source"])

    ported = [r for r in res_all if every(r, ("agreed",))]
    rounding = [r for r in res_all if every(r, ("agreed", "rounding")) and r not in ported]
    certified = [r for r in res_all if certify_status(r.get("certify")) not in ("not run",)]
    passed = [r for r in certified if certify_status(r.get("certify")) == "pass"]
    lines = [(f"{len(ported)} of {len(res_all)} zoo models port to every other framework and agree with the source "
             f"within {BAR:g} (each port loaded by its own framework alone); {len(rounding)} more port to every other "
             f"framework and agree within it or by float32 rounding alone (≈); {len(certified)} were certified "
             f"({len(passed)} PASS){', the rest not yet' if len(certified) < len(res_all) else ''}. The errors, the "
             f"reasons and the commands are in "
             f"[{link}]({link}). ✓: agreed / PASS; ≈: over the bar in float32, but run in float64 the port agrees "
             f"with the source run in float64 within {BAR64:g}, and its float32 difference is within the two "
             f"frameworks' own float32 errors (each's float32 output against its own float64 output, measured): the "
             f"bar is below float32's own error on deep models; off: over the bar, not so explained; `*`: not in issue "
             f"24's list."), "",
             "| model | torch | Keras | ONNX | Flax | certify |", "|---|---|---|---|---|---|"]  # fmt: skip
    for r in res_all:
        name = r["name"] + ("" if r.get("listed", True) else " *")
        if r["prepare"]["rc"] != 0:
            lines.append(f"| `{name}` | prepare failed | | | | |")
            continue
        cells = ["source" if t == r["source"] else _mark(status(r, t)) for t in TARGETS]
        lines.append(f"| `{name}` | " + " | ".join(cells) + f" | {_mark(certify_status(r.get('certify')))} |")
    return "\n".join(lines)


def replace_section(text: str, body: str) -> str:
    """`text` with everything between BEGIN and END replaced by `body`. Raises ValueError without both markers."""
    if BEGIN not in text or END not in text or text.index(BEGIN) > text.index(END):
        raise ValueError(f"no {BEGIN} ... {END} section")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{body}\n{END}{tail}"


__all__ = ["BAR", "BAR64", "BEGIN", "END", "certify_status", "explained", "float64_rows", "port_status", "readme_table",
           "render", "replace_section", "status", "summary_line", "totals"]
