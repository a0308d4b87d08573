"""The per-layer tables of certificate.md, without the wall: the picture, then per dtype the rows a reader needs and
the whole table in a collapsed <details> block (certificate.json keeps every row too).

The rows shown (ROW_RULE): the first diverging layer of each voice; every layer over its bar in isolation (MAX_OVER
at most) and, per voice, the first over its bar accumulated; the GROWTH_ROWS layers where the accumulated error
grows most; the last layer. Growth at a layer: its accumulated error over the largest accumulated error of the
layers it reads (the model's input counts as 0), both raised by GROWTH_FLOOR times the dtype's unit roundoff so that
an exact 0 stays finite; a layer's score is the largest over the voices.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .cells import cell, details, error_of, group_notes, is_check, raised, table

GROWTH_ROWS = 5
GROWTH_FLOOR = 1e-2
MAX_OVER = 20
ROW_RULE = (f"Rows shown: the first diverging layer; every layer over its bar in isolation ({MAX_OVER} at most) and "
            f"the first over it accumulated; the {GROWTH_ROWS} layers where the accumulated error grows most (its "
            "ratio to the largest accumulated error of the layers it reads, the input counting as 0, both plus "
            f"{GROWTH_FLOOR:g} of the dtype's unit roundoff; the largest over the voices); the last layer. Every layer: "
            "the collapsed table below each (and certificate.json).")  # fmt: skip


def sources(cert: dict[str, Any]) -> list[list[int]]:
    """Per layer, the positions of the layers it reads (-1: the input); the previous one where the certificate
    predates the model section's `inputs`."""
    return [list(la.get("inputs", [i - 1])) for i, la in enumerate(cert["model"]["layers"])]


def growth(rows: list[dict[str, Any]], reads: list[list[int]], dtype: str) -> list[float]:
    """Per layer, the growth of the accumulated error there (NaN where it or all its inputs have none)."""
    f = GROWTH_FLOOR * float(np.finfo(dtype).eps)
    acc = [error_of(r.get("accumulated")) if is_check(r.get("accumulated")) else math.nan for r in rows]
    out = []
    for i, e in enumerate(acc):
        before = [0.0 if j < 0 else acc[j] for j in reads[i] if j < len(acc)]
        before = [b for b in before if not math.isnan(b)]
        ok = not math.isnan(e) and math.isfinite(e) and before and all(math.isfinite(b) for b in before)
        out.append((e + f) / (max(before) + f) if ok else math.nan)
    return out


def _bad(c: Any) -> bool:
    return raised(c) or (is_check(c) and not c["pass"])


def choose(columns: dict[str, list[dict[str, Any]]], reads: list[list[int]], dtype: str) -> tuple[dict[int, list[str]], int]:
    """({layer index: why it is shown}, how many layers over the bar in isolation were left to the full table)."""
    why: dict[int, list[str]] = {}

    def add(i: int, reason: str) -> None:
        if reason not in why.setdefault(i, []):
            why[i].append(reason)

    over: dict[int, list[str]] = {}
    for who, rows in columns.items():
        first = next((r["index"] for r in rows if "isolated" in r and "not_computed" not in r["isolated"]
                      and not r["isolated"].get("pass", False)), None)  # fmt: skip
        if first is not None:
            add(first, f"first diverging in {who}")
        for r in rows:
            if _bad(r.get("isolated")):
                over.setdefault(r["index"], []).append(who)
        acc = next((r["index"] for r in rows if _bad(r.get("accumulated"))), None)
        if acc is not None:
            add(acc, f"first over its bar accumulated in {who}")
    for i in sorted(over)[:MAX_OVER]:
        add(i, f"over its bar in isolation in {', '.join(over[i])}")
    scores: dict[int, tuple[float, str]] = {}
    for who, rows in columns.items():
        for i, g in enumerate(growth(rows, reads, dtype)):
            if not math.isnan(g) and g > scores.get(i, (0.0, ""))[0]:
                scores[i] = (g, who)
    for i, (g, who) in sorted(scores.items(), key=lambda kv: -kv[1][0])[:GROWTH_ROWS]:
        if g > 1:
            add(i, f"error grows x{g:.3g} ({who})")
    if reads:
        add(len(reads) - 1, "the last layer")
    return dict(sorted(why.items())), max(len(over) - MAX_OVER, 0)


def _pair(r: dict[str, Any]) -> str:
    return cell(r) if "isolated" not in r and "accumulated" not in r else f"{cell(r.get('isolated'))} / {cell(r.get('accumulated'))}"


def tables(cert: dict[str, Any], columns: dict[str, list[dict[str, Any]]], dtype: str, title: str) -> list[str]:
    """The chosen rows of one dtype's per-layer table, then every row in a collapsed block."""
    layers = cert["model"]["layers"]
    why, left = choose(columns, sources(cert), dtype)
    head = ["#", "layer", "kind", *(f"`{w}`" if w != "source" else "source" for w in columns)]
    row = lambda i: [i, f"`{layers[i]['name']}`", layers[i]["kind"], *(_pair(rows[i]) for rows in columns.values())]
    lines = [title, ""] + table([*head, "shown because"], [[*row(i), "; ".join(r)] for i, r in why.items()])
    if left:
        lines.append(f"\n{left} more layers over their bar in isolation: the full table.")
    return lines + [""] + details(f"every layer in {dtype} ({len(layers)} rows)", table(head, [row(i) for i in range(len(layers))]))


def section(cert: dict[str, Any]) -> list[str]:
    lines = ["## Layer by layer", "",
             ("Isolated: the layer fed the reference's own input. Accumulated: the voice's own chain up to it. Each "
             "cell: isolated / accumulated."), "", ROW_RULE, "",
             ("![the accumulated error of every voice against the layer index, float32 and float64, the bars dashed, "
             "the first diverging layer dotted](certificate.png)"), ""]  # fmt: skip
    for d in ("float32", "float64"):
        columns = {v: e["layers"][d] for v, e in cert["voices"].items() if d in e.get("layers", {})}
        if columns:
            lines += tables(cert, columns, d, f"### {d} (bar {cert['bars'][d]:g})")
    return lines


def source_section(cert: dict[str, Any]) -> list[str]:
    """The user's own model against the reference; absent for a description (there is no model behind it)."""
    s = cert["source"]
    if "none" in s:
        return []
    lines = ["## The source model itself", "",
             (f"The user's own {s['source']} model ({s['path']}), as its framework loaded it, in {s['dtype']}: whole "
             f"forward {cell(s['forward'])}."), ""]  # fmt: skip
    lines += group_notes([("source", n) for n in s.get("notes", [])])
    lines += [f"- {k}: {s[k]}" for k in ("isolated", "accumulated") if isinstance(s.get(k), str)]
    if s.get("layers") and any(("isolated" in r or "accumulated" in r) for r in s["layers"]):
        bar = cert["bars"].get(s["dtype"], s["forward"].get("bar", math.nan))
        lines += [""] + tables(cert, {"source": s["layers"]}, s["dtype"], f"Per layer, in {s['dtype']} (bar {bar:g}):")
    return lines + [""]


__all__ = ["GROWTH_FLOOR", "GROWTH_ROWS", "MAX_OVER", "ROW_RULE", "choose", "growth", "section", "source_section",
           "sources", "tables"]  # fmt: skip
