"""The sections of certificate.md below its first screen and the per-layer tables: the model and the inputs, the
whole model per voice (with the voices' notes, each stated once), the gradients, the GRU initial state, the training
step, the speed ranking, the versions and every failed check. A section that does not apply to the model (no GRU,
no speed ranking, nothing to train, no gradients) is left out; long tables keep their chosen rows in view and every
row in a collapsed <details> block."""

from __future__ import annotations

import shlex
from typing import Any

from .cells import cell, details, error_of, group_notes, status, table

MAX_OVER = 10  # gradient tensors over their bar shown in view; the collapsed table has them all


def about(cert: dict[str, Any]) -> list[str]:
    m, i = cert["model"], cert["inputs"]
    lines = ["## The model and the inputs", "",
             f"- command: `{shlex.join(cert['command'])}`" if cert.get("command") else "- command: (called from Python)",
             (f"- input {tuple(m['input_shape'])} {m['input_dtype']}, boundary {m['boundary']}; {len(m['layers'])} "
              f"layers, {m['parameters']} parameters (canonical), {m['flops']} forward FLOPs at this batch"),
             f"- batch {i['batch']}: {i.get('batch_note', 'the batch given')}",
             f"- inputs: x {i['x']}; dy {i['dy']}" + (f"; GRU h0 {i['h0']}" if "h0" in i else "")
             + f"; training targets seed {i['seeds']['targets']}",
             *([f"- {i['gru_state']}"] if "gru_state" in i else []),
             *(_compared_steps(i["compared_steps"]) if "compared_steps" in i else []),
             f"- reference: {cert['reference']}; error: {cert['error_measure']}; bars: "
             + ", ".join(f"{d} {b:g}" for d, b in cert["bars"].items()),
             *([(f"- calibrated float32 bar: {cal['rule']}; it judged {cal['checks']} checks here, {cal['passed']} "
                 "within it")] if (cal := cert.get("float32_calibration")) and cal["checks"] else []),
             *([(f"- float64 bar by the reference's one-ulp spread: {sp['rule']}; it judged {sp['checks']} checks here, "
                 f"{sp['passed']} within it")] if (sp := cert.get("float64_calibration")) and sp["checks"] else [])]  # fmt: skip
    if "none" in cert.get("source", {}):
        lines.append(f"- source: {cert['source']['none']}")
    if "skipped" in cert.get("speed", {}):
        lines.append(f"- speed ranking: skipped ({cert['speed']['skipped']})")
    rows = [[la["index"], f"`{la['name']}`", la["kind"], ", ".join(f"{k}={v}" for k, v in la["options"].items()),
             tuple(la["output_shape"]), la["parameters"]] for la in m["layers"]]  # fmt: skip
    return lines + [""] + details(f"the {len(rows)} layers: kind, options, output shape, parameters",
                                  table(["#", "layer", "kind", "options", "output", "params"], rows))  # fmt: skip


def _compared_steps(c: dict[str, Any]) -> list[str]:
    """Which positions the padded layers were compared at, and why."""
    names = ", ".join(f"`{n}`" for n in c["names"])
    line = (f"- padded steps: layers {names} (the mask of `{c['mask_source']['name']}`, row lengths {c['lengths']}) "
            f"compared at {c['compared']}: {c['why']}; the model's output {c['output']}")
    return [line]


def _grad_summary(g: dict[str, Any]) -> str:
    if "tensors" not in g:
        return cell(g) or "none"
    worst = max(g["tensors"], key=error_of)
    bad = sum(not t["pass"] for t in g["tensors"])
    return f"{g['dtype']}: worst {cell(worst)} ({worst['tensor']})" + (f", {bad} over" if bad else "")


def whole_model(cert: dict[str, Any]) -> list[str]:
    lines = ["## Whole model, every voice", ""]
    rows, notes = [], []
    for v, e in cert["voices"].items():
        if "unavailable" in e:
            continue
        fd = e.get("first_diverging_layer")
        rows.append([f"`{v}`", e.get("mode", ""), cell(e["forward"].get("float32")) or "-", cell(e["forward"].get("float64")) or "-",
                     _grad_summary(e.get("gradients", {})), f"`{fd['name']}` ({fd['dtype']})" if fd else "none"])  # fmt: skip
        notes += [(v, n) for n in e.get("notes", [])]
    b = cert["bars"]
    lines += table(["voice", "mode", f"float32 (bar {b['float32']:g})", f"float64 (bar {b['float64']:g})",
                    "gradients", "first diverging layer"], rows)  # fmt: skip
    if notes:
        lines += ["", "What each voice's build translates (a note that holds for several layers, once, with them):", ""]
        lines += group_notes(notes)
    return lines + [""]


def gradients(cert: dict[str, Any]) -> list[str]:
    vs = [(v, e["gradients"]) for v, e in cert["voices"].items() if "tensors" in e.get("gradients", {})]
    if not vs:  # no voice computed gradients: why is on the first screen
        return []
    names = list(dict.fromkeys(t["tensor"] for _, g in vs for t in g["tensors"]))
    got = {(v, t["tensor"]): t for v, g in vs for t in g["tensors"]}
    full = [[f"`{n}`", *(cell(got.get((v, n))) or "-" for v, _ in vs)] for n in names]
    over = [n for n in names if any(not t["pass"] for (_, m), t in got.items() if m == n)]
    shown = {"input", *over[:MAX_OVER], *(max(g["tensors"], key=error_of)["tensor"] for _, g in vs)}
    head = ["tensor", *[f"`{v}` {g['dtype']}" for v, g in vs]]
    lines = ["## Gradients of the input and of every parameter", "",
             ("Each voice's own autograd, for L = <dy, model(x)>, against the reference's hand-written backward. Rows "
             f"shown: the input, the first {MAX_OVER} tensors over their bar, and each voice's worst."), ""]  # fmt: skip
    lines += table(head, [r for r, n in zip(full, names, strict=True) if n in shown]) + [""]
    if len(over) > MAX_OVER:
        lines += [f"{len(over) - MAX_OVER} more tensors over their bar: the full table.", ""]
    return lines + details(f"every tensor ({len(names)} rows)", table(head, full))


def initial_state(cert: dict[str, Any]) -> list[str]:
    if "initial_state" not in cert or not cert["initial_state"]:  # a model without a GRU has no such section
        return []
    rows = cert["initial_state"]
    lines = ["## GRU layers with a non-zero initial state", "",
             ("Each voice's op-contract gru (impls.backend(voice).gru) fed the reference's input to the layer and a "
             "seeded h0, against impls.primitives.numpy_impl.gru in float64. Per voice and dtype, the worst of y and "
             "h_T over the GRU layers (refusals: the first screen)."), ""]  # fmt: skip
    summary = []
    for v in dict.fromkeys(r["voice"] for r in rows):
        cells = []
        for d in ("float32", "float64"):
            checks = [r[k] for r in rows if r["voice"] == v and r.get("dtype") == d for k in ("y", "h_T") if k in r]
            checks += [r for r in rows if r["voice"] == v and r.get("dtype") == d and "error" in r and "y" not in r]
            cells.append(status(checks) or "-")
        summary.append([f"`{v}`", *cells])
    lines += table(["voice", "float32", "float64"], summary) + [""]
    full = [[f"`{r['layer']}`", r["variant"], f"`{r['voice']}`", r.get("dtype", "-"), cell(r["y"]) if "y" in r else cell(r),
             cell(r["h_T"]) if "h_T" in r else ""] for r in rows]  # fmt: skip
    return lines + details(f"every GRU layer, voice and dtype ({len(full)} rows)",
                           table(["layer", "variant", "voice", "dtype", "y", "h_T"], full))  # fmt: skip


HOLDS = ": it holds the model in its own parametrization or convention ("
STEP = "); its step differs"


def _difference(d: str, rows: dict[str, Any]) -> list[str]:
    """One of the training section's differences; a voice's parametrization notes, one a layer in the JSON's
    string, grouped ("9 batch_norm layers (...): ...") beneath it."""
    voice = d.partition(HOLDS)[0]
    notes = rows.get(voice, {}).get("parametrization")
    if HOLDS not in d or STEP not in d or not notes:
        return [f"- {d}"]
    grouped = group_notes([(voice, n) for n in notes])
    return [f"- {voice}: it holds the model in its own parametrization or convention; its step differs"
            + d.split(STEP, 1)[1]] + ["  " + g.replace(f"- `{voice}`: ", "- ", 1) for g in grouped]


def training(cert: dict[str, Any]) -> list[str]:
    t = cert["training"]
    ran = {v: r for v, r in t.get("voices", {}).items() if "not_computed" not in r}
    if "not_compared" in t or not ran:  # why is on the first screen; no framework voice among this run's
        return []
    lines = ["## One training step", "",
             (f"Loss {t['loss']} (impls.model.training.loss_kind), Adam lr {t['lr']}, {t['dtype']}, Dropout "
              f"{t['dropout']}; each framework's own optimizer with its defaults against the NumPy reference step in "
              "the same convention."), ""]  # fmt: skip
    lines += [f"- {k}: {v}" for k, v in t["conventions"].items()]
    if t.get("bar_rule"):
        lines.append(f"- the bar after the step: {t['bar_rule']}")
    for d in t.get("differences", []):
        lines += _difference(d, t["voices"])
    lines.append("")
    rows = []
    for v, r in ran.items():
        if "weights" not in r:
            why = next((f"{k}: {r[k]}" for k in ("unavailable", "refused", "error") if k in r), "")
            rows.append([f"`{v}`", r["convention"], r["eps"], "-", "-", why])
            continue
        worst = max(r["weights"], key=error_of)
        rows.append([f"`{v}`", r["convention"], r["eps"], cell(r["loss_check"]),
                     f"{cell(worst)} ({worst['tensor']}, bar {worst['bar']:g})", "pass" if r["pass"] else "**FAIL**"])
    lines += table(["voice", "convention", "eps", "loss", "worst weight after the step", "verdict"], rows)
    reasons = [f"- `{v}` bar: {r['bar_reason']}" for v, r in ran.items() if r.get("bar_reason")]
    return lines + [""] + reasons + ([""] if reasons else [])


def speed(cert: dict[str, Any]) -> list[str]:
    s = cert.get("speed", {})
    if "skipped" in s or not s:  # said in the model section
        return []
    m, c = s["machine"], s["contention"]
    lines = ["## Speed (paired, interleaved blocks)", ""]
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
        lines += table(["rank", "voice (mode)", "median per call", "ratio to fastest", "95% interval", "GFLOP/s"], rows)
        lines += [f"- `{v}` left out: {why}" for v, why in p.get("left_out", {}).items()]
    return lines + [""]


def versions(cert: dict[str, Any]) -> list[str]:
    v = cert["versions"]
    return ["## Versions", "", ", ".join(f"{k} {v[k] or 'not installed'}" for k in v),
            "", f"Checks took {cert['checks_s']:.1f} s, the whole certificate {cert['total_s']:.1f} s"
            + (f"; peak resident memory {memory(cert['memory'])}" if "memory" in cert else "") + ".", ""]


def memory(mem: dict[str, float]) -> str:
    """This process's peak, and with a worker its own and the two processes' most at one moment."""
    if "peak_rss_together_gib" not in mem:
        return f"{mem['peak_rss_gib']:.2f} GiB"
    return (f"{mem['peak_rss_gib']:.2f} GiB, the worker's {mem['peak_rss_children_gib']:.2f} GiB, both at once at most "
            f"{mem['peak_rss_together_gib']:.2f} GiB (read every {mem['together_sampled_s']} s)")


def failed(cert: dict[str, Any]) -> list[str]:
    fails = cert["failures"]
    if not fails:
        return []
    return ["## Every failed check", ""] + details(f"{len(fails)} checks over the bar or raised",
                                                  [f"- {f}" for f in fails])  # fmt: skip


__all__ = ["about", "failed", "gradients", "initial_state", "speed", "training", "versions", "whole_model"]
