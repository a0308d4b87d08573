"""A certificate dict (nnparity/certify/) written as certificate.json, certificate.md and certificate.png.

    certificate.write(cert, folder)     # the three files, all or none (nnparity/output.py)

The JSON is the dict itself (non-finite floats as the strings "inf" / "nan", so it stays strict JSON): every number
of every check. The Markdown is for reading: its first screen (summary.py: everything above the first `##`
heading) gives the verdict, the first diverging layer with its error, one voice x (float32, float64, gradients,
training step) table and what was refused, grouped by reason; then the model, the per-layer tables with the picture
(layers.py: the rows a reader needs in view, every row in a collapsed <details> block), the whole model per voice,
the gradients, the GRU initial state, the training step, the source model, the speed ranking, the versions and every
failed check (sections.py). A section that does not apply to the model is left out. The picture is nnparity/plot.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .. import plot
from ..output import write_files
from . import layers, sections, summary
from .summary import FIRST_SCREEN_LINES, first_screen

FILES = ("certificate.json", "certificate.md", "certificate.png")


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


PARTS = (summary.render, sections.about, layers.section, sections.whole_model, sections.gradients,
         sections.initial_state, sections.training, layers.source_section, sections.speed, sections.versions,
         sections.failed)  # fmt: skip


def to_markdown(cert: dict[str, Any]) -> str:
    return "\n".join(line for part in PARTS for line in part(cert))


def outside_details(md: str) -> list[str]:
    """The lines of `md` a reader sees without opening a <details> block."""
    out, depth = [], 0
    for line in md.splitlines():
        depth += line.count("<details>")
        if depth == 0:
            out.append(line)
        depth -= line.count("</details>")
    return out


def write(cert: dict[str, Any], folder: Path) -> list[Path]:
    """DIR/certificate.json, DIR/certificate.md and DIR/certificate.png, all or none (nnparity/output.py)."""
    return write_files(Path(folder), dict(zip(FILES, (to_json(cert), to_markdown(cert), plot.png(cert)), strict=True)))


_speed = sections.speed  # tests render the speed section alone

__all__ = ["FILES", "FIRST_SCREEN_LINES", "first_screen", "outside_details", "to_json", "to_markdown", "write"]
