"""The kinds matrix: every layer kind of the description against every place that must know it.

    rows = matrix()            # one Row per kind of impls.model.layers.KINDS
    gaps = missing(rows)       # ["gelu: the flax port has no emitter and declares no refusal", ...]

Columns, read from the registries themselves (nothing here lists a kind by hand):
- the four voices from primitives: the kind's forward calls only op-contract functions (LayerSpec.OPS) that the
  backend module offers;
- the three importers: a converter registered with `kinds=` that makes it, or the source's declared absence
  (`REGISTRY.absent(kind, why)`: the framework has no such layer);
- the four ports: an emitter registered for it, or a declared refusal (`EMITTERS.refuse(kind, why)`).
A cell that is none of these is a gap: adding a kind means filling its row (docs/DESIGN.md, "Adding a kind"), and
tests/test_layout.py fails naming the kind and the column. A column whose framework is not installed is
"unavailable" with the reason, never a gap.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from . import backend
from .frameworks import BackendUnavailable
from .model.layers import KINDS
from .model.voices import PORTS, PRIMITIVES

IMPORTERS = {"keras": "impls.importers.keras_import", "torch": "impls.importers.torch_import",
             "onnx": "impls.importers.onnx_import"}
"""source -> the importer package; each holds REGISTRY (impls.registry.Registry)."""
OK = ("computes", "converts")  # what a cell that is no gap says (a port's emitter "converts" too)
STATES = (*OK, "refused", "absent", "unavailable", "missing")


@dataclass
class Row:
    kind: str
    cells: dict[str, tuple[str, str]] = field(default_factory=dict)  # column -> (state, detail)


def columns() -> list[str]:
    return [*(f"{v} (primitives)" for v in PRIMITIVES), *(f"{s} importer" for s in IMPORTERS),
            *(f"{v} port" for v in PORTS)]


def _primitive(voice: str) -> tuple[object | None, str]:
    try:
        return backend(voice), ""
    except BackendUnavailable as e:
        return None, str(e)


def _registry(module: str, name: str) -> tuple[object | None, str]:
    try:
        return getattr(importlib.import_module(module), name), ""
    except BackendUnavailable as e:
        return None, str(e)
    except ImportError as e:
        return None, f"{module} is not importable here ({type(e).__name__}: {e})"


def matrix() -> list[Row]:
    rows = [Row(kind) for kind in KINDS]
    for voice in PRIMITIVES:
        ops, why = _primitive(voice)
        for row in rows:
            if ops is None:
                row.cells[f"{voice} (primitives)"] = ("unavailable", why)
                continue
            lacking = [op for op in KINDS[row.kind].OPS if not callable(getattr(ops, op, None))]
            row.cells[f"{voice} (primitives)"] = (
                ("missing", f"{ops.__name__} lacks {', '.join(lacking)}") if lacking else
                ("computes", ", ".join(KINDS[row.kind].OPS) or "array indexing and arithmetic only"))  # fmt: skip
    for column, module, name in ([(f"{s} importer", m, "REGISTRY") for s, m in IMPORTERS.items()]
                                 + [(f"{v} port", m, "EMITTERS") for v, m in PORTS.items()]):  # fmt: skip
        registry, why = _registry(module, name)
        for row in rows:
            row.cells[column] = ("unavailable", why) if registry is None else registry.coverage(row.kind)
    return rows


def missing(rows: list[Row]) -> list[str]:
    """Every gap, named: the kind, the column, what is lacking."""
    return [f"{row.kind}: {column}: " + (detail or "no converter or emitter makes it, and no refusal or absence is "
                                         "declared with its reason")
            for row in rows for column, (state, detail) in row.cells.items() if state == "missing"]  # fmt: skip


def markdown(rows: list[Row]) -> str:
    """The matrix as a Markdown table: a mark per cell, the reasons of refusals and absences below it."""
    cols = columns()
    mark = {"computes": "yes", "converts": "yes", "refused": "refused", "absent": "n/a", "unavailable": "?",
            "missing": "**MISSING**"}
    out = ["| kind | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    notes = []
    for row in rows:
        out.append(f"| `{row.kind}` | " + " | ".join(mark[row.cells[c][0]] for c in cols) + " |")
        notes += [f"- `{row.kind}`, {c}: {row.cells[c][0]}: {row.cells[c][1]}" for c in cols
                  if row.cells[c][0] in ("refused", "absent", "unavailable")]  # fmt: skip
    return "\n".join(out + ([""] + notes if notes else [])) + "\n"


__all__ = ["IMPORTERS", "Row", "columns", "markdown", "matrix", "missing"]
