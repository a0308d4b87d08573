"""What every part of certificate.md is made of: a check as a cell, a Markdown table, a collapsed <details> block,
the worst of some checks, and notes that repeat across layers stated once with the layers they apply to."""

from __future__ import annotations

import math
import re
from typing import Any

WHY_NOT = ("refused", "unavailable", "none", "not_computed", "not_compared")


def error_of(c: Any) -> float:
    """A check's error as a number for ranking: inf where it raised or is non-finite, NaN where there is none."""
    if not isinstance(c, dict) or "error" not in c:
        return math.nan
    e = c["error"]
    if isinstance(e, str):
        try:
            e = float(e)  # "inf" / "nan" as certificate.json writes them
        except ValueError:
            return math.inf  # a raised check's message
    return float(e) if isinstance(e, (int, float)) and not math.isnan(e) else math.inf


def is_check(c: Any) -> bool:
    """A comparison that computed, passed or not (not a refusal, nor a check that raised)."""
    return isinstance(c, dict) and "pass" in c


def raised(c: Any) -> bool:
    return isinstance(c, dict) and isinstance(c.get("error"), str) and "pass" not in c


def num(x: float) -> str:
    return f"{x:.2e}" if math.isfinite(x) else str(x)


def cell(c: dict[str, Any] | None) -> str:
    """One check as a cell: its error, bold and marked when over its bar; or why there is none."""
    if not c:
        return ""
    for k in WHY_NOT:
        if k in c:
            return k.replace("_", " ")
    if raised(c):
        return "raised"
    text = num(error_of(c)) + (f" (calibrated bar {num(c['bar'])})" if c.get("calibrated") else "")
    return text if c["pass"] else f"**{text} ✗**"


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return out + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]


def details(summary: str, lines: list[str]) -> list[str]:
    """A collapsed block (GitHub renders the Markdown inside it once opened: blank lines around the content)."""
    return [f"<details><summary>{summary}</summary>", "", *lines, "", "</details>", ""]


def worst(checks: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The check with the largest error among those that computed (a raised one counts as infinite)."""
    ranked = [c for c in checks if is_check(c) or raised(c)]
    return max(ranked, key=error_of) if ranked else None


def status(checks: list[dict[str, Any]]) -> str:
    """✓ / ✗ and the worst error of `checks` (those that computed), or "" where none did."""
    w = worst(checks)
    if w is None:
        return ""
    bad = any(raised(c) or (is_check(c) and not c["pass"]) for c in checks)
    text = "raised" if raised(w) else num(error_of(w))
    return f"**✗ {text}**" if bad else f"✓ {text}"


def voices(who: list[str]) -> str:
    return ", ".join(f"`{w}`" for w in who)


LABEL = re.compile(r"^(?:layer \d+ '(?P<name>[^']*)' \((?P<kind>[^)]*)\)|node \d+ '(?P<node>[^']*)'|(?P<bare>[\w.\-/]+)): "
                   r"(?P<text>.+)$", re.DOTALL)  # fmt: skip
"""A note about one layer: "layer 3 'bn1' (batch_norm): ..." (the ports, the Keras importer), "node 4 'Conv_3': ..."
(the ONNX importer) or "bn1: ..." (the torch importer)."""


def group_notes(notes: list[tuple[str, str]]) -> list[str]:
    """[(who, note)] as Markdown list items: notes that are the same text but for the layer they name are stated once,
    with the count and the layers ("20 batch_norm layers (`bn1`, ...): ..."); the same note of several voices once,
    with the voices. Order: first appearance."""
    groups: dict[tuple[str, str], list[tuple[str, str | None, str]]] = {}
    for who, note in notes:
        m = LABEL.match(note)
        key, name = ((m["kind"] or "", m["text"]), m["name"] or m["node"] or m["bare"]) if m else (("", note), None)
        groups.setdefault(key, []).append((who, name, note))
    lines = []
    for (kind, text), members in groups.items():
        who = list(dict.fromkeys(w for w, _, _ in members))
        names = list(dict.fromkeys(n for _, n, _ in members if n is not None))
        if len(names) <= 1:
            lines.append(f"- {voices(who)}: {members[0][2]}")
            continue
        what = f"{len(names)} {kind.rsplit('.', 1)[-1]} layers" if kind else f"{len(names)} layers"
        lines.append(f"- {voices(who)}: {what} ({', '.join(f'`{n}`' for n in names)}): {text}")
    return lines


__all__ = ["cell", "details", "error_of", "group_notes", "is_check", "num", "raised", "status", "table", "voices",
           "worst"]  # fmt: skip
