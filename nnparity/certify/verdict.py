"""The verdict: every comparison that failed or raised, with a readable path, and the first diverging layer over the
source and every voice."""

from __future__ import annotations

from typing import Any


def _checks(node: Any, where: str) -> list[tuple[str, dict]]:
    """Every comparison dict (one with "pass") in a section, with a readable path."""
    found = []
    if isinstance(node, dict):
        if "pass" in node and "bar" in node:
            found.append((where, node))
        for k, v in node.items():
            if isinstance(v, (dict, list)):
                found += _checks(v, f"{where} {k}" if where else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            label = v.get("name") or v.get("tensor") or v.get("layer") or str(i) if isinstance(v, dict) else str(i)
            if isinstance(v, dict) and "voice" in v and "dtype" in v and "layer" in v:
                label = f"{v['layer']} {v['voice']} {v['dtype']}"
            found += _checks(v, f"{where} {label}")
    return found


def _errors(node: Any, where: str) -> list[str]:
    """Every check that raised (a bug somewhere): {"error": "TypeError: ..."} entries."""
    found = []
    if isinstance(node, dict):
        if isinstance(node.get("error"), str):
            found.append(f"{where}: raised {node['error']}")
        for k, v in node.items():
            if isinstance(v, (dict, list)):
                found += _errors(v, f"{where} {k}" if where else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            label = (v.get("name") or v.get("tensor") or v.get("layer") or str(i)) if isinstance(v, dict) else str(i)
            found += _errors(v, f"{where} {label}")
    return found


def failures(cert: dict[str, Any]) -> list[str]:
    out = []
    for section in ("voices", "initial_state", "training", "source"):
        for where, c in _checks(cert.get(section), section):
            if not c["pass"]:
                out.append(f"{where}: relative error {c['error']:.3g} > bar {c['bar']:.1g}"
                           + (f" ({c['problem']})" if c.get("problem") else ""))
        out += _errors(cert.get(section), section)
    return out


def overall_first_diverging(cert: dict[str, Any]) -> dict[str, Any] | None:
    """The earliest first-diverging layer over the source and every voice, with who diverges there."""
    found = []
    src = cert.get("source", {}).get("first_diverging_layer")
    if src:
        found.append(("source", src))
    for v, e in cert["voices"].items():
        if e.get("first_diverging_layer"):
            found.append((f"{v} {e['first_diverging_layer']['dtype']}", e["first_diverging_layer"]))
    if not found:
        return None
    index = min(f["index"] for _, f in found)
    first = next(f for _, f in found if f["index"] == index)
    return {"index": index, "name": first["name"], "kind": first["kind"], "in": [w for w, f in found if f["index"] == index]}


__all__ = ["failures", "overall_first_diverging"]
