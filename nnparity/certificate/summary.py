"""The first screen of certificate.md: everything above its first `##` heading (FIRST_SCREEN_LINES at most).

It answers the user: the verdict; the first diverging layer with its error; one table, voice x (float32, float64,
gradients, training step), each cell pass or fail with the worst error; what raised; what was refused or not
checked, grouped by reason.
"""

from __future__ import annotations

from typing import Any

from .cells import error_of, is_check, num, raised, status, table

FIRST_SCREEN_LINES = 50
MAX_RAISED = 5  # checks that raised, listed on the first screen; the last section lists every failed check
DTYPES = ("float32", "float64")


def first_screen(md: str) -> list[str]:
    """The lines of certificate.md above its first `##` heading."""
    lines = md.splitlines()
    end = next((i for i, line in enumerate(lines) if line.startswith("## ")), len(lines))
    return lines[:end]


def _first_over(rows: list[dict[str, Any]]) -> str:
    """Where a voice's checks in one dtype first fail: the first layer over its bar, isolated or accumulated."""
    for r in rows:
        if any(raised(r.get(k)) or (is_check(r.get(k)) and not r[k]["pass"]) for k in ("isolated", "accumulated")):
            return f"; first over: `{r['name']}`"
    return ""


def _dtype_cell(e: dict[str, Any], d: str) -> str:
    """The whole forward and every layer, isolated and accumulated, in one dtype."""
    if d in e.get("refused", {}):
        return "refused"
    fwd = e.get("forward", {}).get(d)
    if fwd is None:
        return "-"
    rows = e.get("layers", {}).get(d, [])
    checks = [fwd] + [r[k] for r in rows for k in ("isolated", "accumulated") if k in r]
    text = status(checks) or "-"
    return text + (_first_over(rows) if text.startswith("**") else "")


def _gradient_cell(g: dict[str, Any]) -> str:
    if "tensors" in g:
        ts = g["tensors"]
        bad = sum(not t["pass"] for t in ts)
        return f"{status(ts)} ({g['dtype']}" + (f"; {bad} of {len(ts)} over" if bad else "") + ")"
    if "none" in g:
        return "none (declared)"
    if raised(g):
        return "**raised**"
    return next((k.replace("_", " ") for k in ("refused", "unavailable", "not_computed", "not_compared") if k in g), "-")


def _training_cell(t: dict[str, Any], v: str) -> str:
    if "not_compared" in t:
        return "not compared"
    r = t.get("voices", {}).get(v)
    if r is None:
        return "-"
    if "weights" in r:
        w = max([r["loss_check"], *r["weights"]], key=error_of)
        return ("✓ " if r["pass"] else "**✗ ") + num(error_of(w)) + ("" if r["pass"] else "**")
    if raised(r):
        return "**raised**"
    return next((k.replace("_", " ") for k in ("refused", "unavailable", "not_computed") if k in r), "-")


def _table(cert: dict[str, Any]) -> list[str]:
    b, t = cert["bars"], cert["training"]
    rows = []
    for v, e in cert["voices"].items():
        if "unavailable" in e:
            rows.append([f"`{v}`", *["unavailable"] * 4])
            continue
        rows.append([f"`{v}`", _dtype_cell(e, "float32"), _dtype_cell(e, "float64"), _gradient_cell(e.get("gradients", {})),
                     _training_cell(t, v)])  # fmt: skip
    s = cert.get("source", {})
    if "forward" in s:  # the user's own model, in the dtype its framework loaded it
        own = {"forward": {s["dtype"]: s["forward"]}, "layers": {s["dtype"]: s.get("layers", [])}}
        rows.append([f"source ({s['source']})", *(_dtype_cell(own, d) for d in DTYPES), "-", "-"])
    out = table(["voice", f"float32 (bar {b['float32']:g})", f"float64 (bar {b['float64']:g})", "gradients",
                 "training step"], rows)  # fmt: skip
    return out + ["", ("Each cell: ✓ within every bar or ✗ over one, and the worst relative error of the voice's checks there: "
                      "the whole forward and every layer, isolated and accumulated, in that dtype; the input's and every "
                      "parameter's gradient; the loss and every weight after one Adam step (the frameworks with an "
                      "optimizer of their own). ✗ names the first layer over its bar."), ""]  # fmt: skip


def _first_diverging(cert: dict[str, Any]) -> list[str]:
    fd = cert.get("first_diverging")
    if not fd:
        return ["**First diverging layer:** none; every layer is within its bar in isolation, in every voice.", ""]
    where = []
    for who in fd["in"]:
        v, _, d = who.partition(" ")
        rows = cert["source"]["layers"] if v == "source" else cert["voices"][v]["layers"][d]
        iso = rows[fd["index"]].get("isolated", {})
        said = (f"raised ({iso['error']})" if raised(iso) else
                f"{num(error_of(iso))} against the bar {iso['bar']:g}" if is_check(iso) else "no check")  # fmt: skip
        where.append(f"{said} in {who}")
    return [f"**First diverging layer:** `{fd['name']}` (layer {fd['index']}, {fd['kind']}), over its bar in isolation: "
            + "; ".join(where) + ".", ""]  # fmt: skip


def _verdict(cert: dict[str, Any]) -> list[str]:
    if cert["verdict"] == "pass":
        return [("**Verdict: PASS**: every compared error is within its bar, the source model included, and every "
                "training step matches its own framework's convention."), ""]  # fmt: skip
    n = len(cert["failures"])
    return [(f"**Verdict: FAIL**: {n} check{'s' if n != 1 else ''} over the bar or raised (each in the section \"Every "
            "failed check\" at the end, and in certificate.json's `failures`)."), ""]  # fmt: skip


def _raised(cert: dict[str, Any]) -> list[str]:
    found = [f for f in cert["failures"] if ": raised " in f]
    if not found:
        return []
    lines = ["**Raised** (a bug in a voice or in nnparity, not a number):"] + [f"- {f}" for f in found[:MAX_RAISED]]
    return lines + ([f"- ... and {len(found) - MAX_RAISED} more"] if len(found) > MAX_RAISED else []) + [""]


def _refused(cert: dict[str, Any]) -> list[str]:
    """What was refused or not checked, grouped by reason."""
    why: dict[str, list[str]] = {}
    for v, e in cert["voices"].items():
        if "unavailable" in e:
            why.setdefault(f"unavailable here: {e['unavailable']}", []).append(f"`{v}`")
            continue
        for d, reason in e.get("refused", {}).items():
            why.setdefault(reason, []).append(f"`{v}` {d}")
        g = e.get("gradients", {})
        for k in ("none", "refused", "not_compared"):
            if k in g:
                why.setdefault(g[k], []).append(f"`{v}` gradients")
    t = cert["training"]
    if "not_compared" in t:
        why.setdefault(t["not_compared"], []).append("the training step, every voice")
    for v, r in t.get("voices", {}).items():
        reason = r.get("refused") or r.get("unavailable")
        if reason and "unavailable" not in cert["voices"].get(v, {}):  # an unavailable voice is said once, above
            why.setdefault(reason, []).append(f"`{v}` training step")
    for r in cert.get("initial_state", []):
        if "refused" in r:
            why.setdefault(r["refused"], []).append(f"`{r['voice']}` {r.get('dtype', '')} GRU `{r['layer']}` from h0".replace("  ", " "))
    if not why:
        return []
    lines = ["**Refused or not checked**, by reason:"]
    for reason, what in why.items():
        what = list(dict.fromkeys(what))
        lines.append(f"- {', '.join(what[:12])}{f' and {len(what) - 12} more' if len(what) > 12 else ''}: {reason}")
    return lines + [""]


def render(cert: dict[str, Any]) -> list[str]:
    m = cert["model"]
    return ([f"# nnparity certificate: {m['name']} ({m['source']})", ""] + _verdict(cert) + _first_diverging(cert)
            + _table(cert) + _raised(cert) + _refused(cert))  # fmt: skip


__all__ = ["FIRST_SCREEN_LINES", "first_screen", "render"]
