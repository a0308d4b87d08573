"""A certificate dict (certify.py) written as certificate.json and certificate.md.

The JSON is the dict itself (non-finite floats as the strings "inf" / "nan", so it stays strict JSON). The Markdown
opens with the verdict and the first diverging layer, then one table per section: whole model, source, layers
(isolated / accumulated), gradients, GRU initial state, training step, speed, versions.
"""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path
from typing import Any

from .output import write_files

MAX_LISTED = 25  # failures listed in the Markdown; the JSON has them all


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_plain(v) for v in node]
    if hasattr(node, "item") and not isinstance(node, (str, bytes)):  # NumPy scalars
        node = node.item()
    if isinstance(node, float) and not math.isfinite(node):
        return str(node)
    return node


def to_json(cert: dict[str, Any]) -> str:
    return json.dumps(_plain(cert), indent=1, allow_nan=False) + "\n"


# --------------------------------------------------------------------------- Markdown


def _e(c: dict[str, Any] | None) -> str:
    """One check as a cell: its error, bold and marked when over its bar; or why there is none."""
    if not c:
        return ""
    for k in ("refused", "unavailable", "none", "not_computed"):
        if k in c:
            return k.replace("_", " ")
    if isinstance(c.get("error"), str):
        return "raised"
    err = c["error"]
    text = f"{err:.2e}" if isinstance(err, (int, float)) and math.isfinite(err) else str(err)
    return text if c["pass"] else f"**{text} ✗**"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return out + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]


def _verdict(cert: dict[str, Any]) -> list[str]:
    m = cert["model"]
    lines = [f"# nnparity certificate: {m['name']} ({m['source']})", ""]
    if cert["verdict"] == "pass":
        lines.append("**Verdict: PASS**: every compared error is within its bar, the source model included, and "
                     "every training step matches its own framework's convention.")  # fmt: skip
    else:
        fails = cert["failures"]
        lines.append(f"**Verdict: FAIL**: {len(fails)} check{'s' if len(fails) != 1 else ''} over the bar or raised:")
        lines += [f"- {f}" for f in fails[:MAX_LISTED]]
        if len(fails) > MAX_LISTED:
            lines.append(f"- ... and {len(fails) - MAX_LISTED} more (certificate.json, `failures`)")
    lines.append("")
    fd = cert.get("first_diverging")
    if fd:
        lines.append(f"**First diverging layer:** `{fd['name']}` (layer {fd['index']}, {fd['kind']}), over its bar in "
                     f"isolation in: {', '.join(fd['in'])}.")  # fmt: skip
    else:
        lines.append("**First diverging layer:** none; every layer is within its bar in isolation, in every voice.")
    return lines + [""]


def _about(cert: dict[str, Any]) -> list[str]:
    m, i = cert["model"], cert["inputs"]
    lines = ["## The model and the inputs", "",
             f"- command: `{shlex.join(cert['command'])}`" if cert.get("command") else "- command: (called from Python)",
             (f"- input {tuple(m['input_shape'])} {m['input_dtype']}, boundary {m['boundary']}; {m['parameters']} "
              f"parameters (canonical), {m['flops']} forward FLOPs at this batch"),
             f"- batch {i['batch']}: {i.get('batch_note', 'the batch given')}",
             f"- inputs: x {i['x']}; dy {i['dy']}" + (f"; GRU h0 {i['h0']}" if "h0" in i else "")
             + f"; training targets seed {i['seeds']['targets']}",
             *([f"- {i['gru_state']}"] if "gru_state" in i else []),
             f"- reference: {cert['reference']}; error: {cert['error_measure']}; bars: "
             + ", ".join(f"{d} {b:g}" for d, b in cert["bars"].items()), ""]  # fmt: skip
    rows = [[la["index"], f"`{la['name']}`", la["kind"], ", ".join(f"{k}={v}" for k, v in la["options"].items()),
             tuple(la["output_shape"]), la["parameters"]] for la in m["layers"]]  # fmt: skip
    return lines + _table(["#", "layer", "kind", "options", "output", "params"], rows) + [""]


def _grad_summary(g: dict[str, Any]) -> str:
    if "tensors" not in g:
        return _e(g) or "none"
    worst = max(g["tensors"], key=lambda t: t["error"] if isinstance(t["error"], float) else math.inf)
    bad = sum(not t["pass"] for t in g["tensors"])
    return f"{g['dtype']}: worst {_e(worst)} ({worst['tensor']})" + (f", {bad} over" if bad else "")


def _voices(cert: dict[str, Any]) -> list[str]:
    lines = ["## Whole model, every voice", ""]
    rows, notes = [], []
    for v, e in cert["voices"].items():
        if "unavailable" in e:
            notes.append(f"- `{v}` unavailable: {e['unavailable']}")
            continue
        for d, why in e.get("refused", {}).items():
            notes.append(f"- `{v}` {d} refused: {why}")
        fd = e.get("first_diverging_layer")
        rows.append([f"`{v}`", e.get("mode", ""), _e(e["forward"].get("float32")) or "-", _e(e["forward"].get("float64")) or "-",
                     _grad_summary(e.get("gradients", {})), f"`{fd['name']}` ({fd['dtype']})" if fd else "none"])  # fmt: skip
        notes += [f"- `{v}`: {n}" for n in e.get("notes", [])]
    b = cert["bars"]
    lines += _table(["voice", "mode", f"float32 (bar {b['float32']:g})", f"float64 (bar {b['float64']:g})",
                     "gradients", "first diverging layer"], rows)  # fmt: skip
    return lines + ([""] + notes if notes else []) + [""]


def _source(cert: dict[str, Any]) -> list[str]:
    s = cert["source"]
    lines = ["## The source model itself", ""]
    if "none" in s:
        return lines + [s["none"], ""]
    lines.append(f"The user's own {s['source']} model ({s['path']}), as its framework loaded it, in {s['dtype']}: "
                 f"whole forward {_e(s['forward'])}.")  # fmt: skip
    lines += [f"- {n}" for n in s.get("notes", [])]
    for k in ("isolated", "accumulated"):
        if isinstance(s.get(k), str):
            lines.append(f"- {k}: {s[k]}")
    rows = [[r["index"], f"`{r['name']}`", r["kind"], _e(r.get("isolated")) or "-", _e(r.get("accumulated")) or "-"]
            for r in s["layers"]]  # fmt: skip
    return lines + [""] + _table(["#", "layer", "kind", "isolated", "accumulated"], rows) + [""]


def _layers(cert: dict[str, Any]) -> list[str]:
    lines = ["## Every layer, isolated / accumulated", "",
             "Isolated: the layer fed the reference's own input. Accumulated: the voice's own chain up to it.", ""]
    for d in ("float32", "float64"):
        vs = [v for v, e in cert["voices"].items() if d in e.get("layers", {})]
        if not vs:
            continue
        names = [la["name"] for la in cert["model"]["layers"]]
        rows = []
        for i, name in enumerate(names):
            row = [f"`{name}`"]
            for v in vs:
                r = cert["voices"][v]["layers"][d][i]
                if "isolated" not in r:
                    row.append(_e(r))
                else:
                    row.append(f"{_e(r['isolated'])} / {_e(r['accumulated'])}")
            rows.append(row)
        lines += [f"### {d} (bar {cert['bars'][d]:g})", ""] + _table(["layer", *[f"`{v}`" for v in vs]], rows) + [""]
    return lines


def _gradients(cert: dict[str, Any]) -> list[str]:
    vs = [(v, e["gradients"]) for v, e in cert["voices"].items() if "tensors" in e.get("gradients", {})]
    lines = ["## Gradients of the input and of every parameter", ""]
    if not vs:
        return lines + ["No voice computed gradients.", ""]
    names = [t["tensor"] for t in vs[0][1]["tensors"]]
    rows = []
    for n in names:
        row = [f"`{n}`"]
        for _, g in vs:
            t = next((t for t in g["tensors"] if t["tensor"] == n), None)
            row.append(_e(t) if t else "-")
        rows.append(row)
    lines.append("Each voice's own autograd, for L = <dy, model(x)>, against the reference's hand-written backward.")
    none = [f"- `{v}`: {e['gradients'].get('none')}" for v, e in cert["voices"].items() if "none" in e.get("gradients", {})]
    return lines + [""] + _table(["tensor", *[f"`{v}` {g['dtype']}" for v, g in vs]], rows) + [""] + none + ([""] if none else [])


def _initial_state(cert: dict[str, Any]) -> list[str]:
    if "initial_state" not in cert:  # a model without a GRU has no such section
        return []
    rows = cert["initial_state"]
    lines = ["## GRU layers with a non-zero initial state", ""]
    lines.append("Each voice's op-contract gru (impls.backend(voice).gru) fed the reference's input to the layer and a "
                 "seeded h0, against impls.primitives.numpy_impl.gru in float64.")  # fmt: skip
    table = [[f"`{r['layer']}`", r["variant"], f"`{r['voice']}`", r.get("dtype", "-"),
              _e(r["y"]) if "y" in r else _e(r), _e(r["h_T"]) if "h_T" in r else ""] for r in rows]  # fmt: skip
    refused = sorted({f"- `{r['voice']}` {r.get('dtype', '')}: {r['refused']}" for r in rows if "refused" in r})
    return lines + [""] + _table(["layer", "variant", "voice", "dtype", "y", "h_T"], table) + [""] + refused + [""]


def _training(cert: dict[str, Any]) -> list[str]:
    t = cert["training"]
    lines = ["## One training step", "",
             (f"Loss {t['loss']} (impls.model.training.loss_kind), Adam lr {t['lr']}, {t['dtype']}, Dropout "
              f"{t['dropout']}; each framework's own optimizer with its defaults against the NumPy reference step in "
              "the same convention."), ""]  # fmt: skip
    lines += [f"- {k}: {v}" for k, v in t["conventions"].items()]
    if t.get("bar_rule"):
        lines.append(f"- the bar after the step: {t['bar_rule']}")
    if "not_compared" in t:
        return lines + ["", f"Not compared: {t['not_compared']}", ""]
    lines += [f"- {d}" for d in t.get("differences", [])] + [""]
    rows = []
    for v, r in t["voices"].items():
        if "weights" not in r:
            why = next((f"{k}: {r[k]}" for k in ("unavailable", "refused", "error") if k in r), "")
            rows.append([f"`{v}`", r["convention"], r["eps"], "-", "-", why])
            continue
        worst = max(r["weights"], key=lambda w: w["error"] if isinstance(w["error"], float) else math.inf)
        rows.append([f"`{v}`", r["convention"], r["eps"], _e(r["loss_check"]),
                     f"{_e(worst)} ({worst['tensor']}, bar {worst['bar']:g})", "pass" if r["pass"] else "**FAIL**"])
    lines += _table(["voice", "convention", "eps", "loss", "worst weight after the step", "verdict"], rows)
    reasons = [f"- `{v}` bar: {r['bar_reason']}" for v, r in t["voices"].items() if r.get("bar_reason")]
    return lines + [""] + reasons + ([""] if reasons else [])


def _speed(cert: dict[str, Any]) -> list[str]:
    s = cert.get("speed", {})
    lines = ["## Speed (paired, interleaved blocks)", ""]
    if "skipped" in s:
        return lines + [f"Skipped: {s['skipped']}.", ""]
    m, c = s["machine"], s["contention"]
    lines.append(f"{s['dtype']}, batch {s['batch']}, threads {s['threads']}, {s['pin'].get('policy')}; machine "
                 f"{m['cpu_model']}, {m['cores']} cores; matmul ceiling {c['matmul_gflops_start']:.1f} -> "
                 f"{c['matmul_gflops_end']:.1f} GFLOP/s; "
                 + ("**contended**: " + "; ".join(c["reasons"]) if c["contended"] else "quiet (bench/contention.py)")
                 + f". Intervals: 95%, over {s['timing']['epochs']} epochs of shuffled blocks (bench/paired.py); "
                 "rows in one rank are indistinguishable.")  # fmt: skip
    for name, p in s["passes"].items():
        rows = [[r["rank"], f"`{r['label']}`", f"{r['median_s'] * 1e3:.3f} ms", f"{r['ratio']:.3f}",
                 f"[{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]" if r["ci95"] else "-",
                 f"{r['gflops']:.2f}" if "gflops" in r else "-"] for r in p["rows"]]  # fmt: skip
        busy = p["machine"].get("others_cores")
        lines += ["", f"### {name}" + (f" (others used {busy:.2f} cores meanwhile)" if busy is not None else ""), ""]
        lines += _table(["rank", "voice (mode)", "median per call", "ratio to fastest", "95% interval", "GFLOP/s"], rows)
        lines += [f"- `{v}` left out: {why}" for v, why in p.get("left_out", {}).items()]
    return lines + [""]


def _versions(cert: dict[str, Any]) -> list[str]:
    v = cert["versions"]
    return ["## Versions", "", ", ".join(f"{k} {v[k] or 'not installed'}" for k in v),
            "", f"Checks took {cert['checks_s']:.1f} s, the whole certificate {cert['total_s']:.1f} s"
            + (f"; peak resident memory {cert['memory']['peak_rss_gib']:.2f} GiB" if "memory" in cert else "") + ".", ""]


def to_markdown(cert: dict[str, Any]) -> str:
    parts = [_verdict, _about, _voices, _source, _layers, _gradients, _initial_state, _training, _speed, _versions]
    return "\n".join(line for part in parts for line in part(cert))


def write(cert: dict[str, Any], folder: Path) -> list[Path]:
    """DIR/certificate.md and DIR/certificate.json, both or neither (nnparity/output.py)."""
    return write_files(Path(folder), {"certificate.json": to_json(cert), "certificate.md": to_markdown(cert)})


__all__ = ["to_json", "to_markdown", "write"]
