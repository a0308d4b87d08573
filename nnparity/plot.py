"""The certificate's picture, certificate.png: how the error grows with depth.

    png_bytes = plot.png(cert)        # what certificate.write puts beside certificate.md
    fig = plot.figure(cert)           # the matplotlib Figure itself (tests read its lines)

One panel per dtype (float32, float64): the accumulated error of every voice that computed that dtype's layers (and
of the user's own model, where it exposes its layers' outputs) against the layer index, on a log scale; the bar as a
dashed line; the first diverging layer as a dotted vertical line. An error of exactly 0 cannot sit on a log axis: it
is drawn at FLOOR times the dtype's unit roundoff, which the panel says. A check that did not compute leaves a gap.
Drawn with matplotlib's Agg canvas, no pyplot state: the same certificate gives the same picture.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np

DTYPES = ("float32", "float64")
FLOOR = 1e-2  # an exact 0 is drawn at FLOOR * the dtype's unit roundoff
VOICE = "voice:"  # the gid of a voice's line: "voice:torch"; the source's is "source", the bar's "bar"


def _error(check: Any) -> float:
    """A check's numeric error, or NaN where it has none (refused, raised, not computed, non-finite)."""
    if not isinstance(check, dict):
        return math.nan
    e = check.get("error")
    if isinstance(e, str):  # "inf" / "nan" as the JSON writes them, or a raised check's message
        try:
            e = float(e)
        except ValueError:
            return math.nan
    return float(e) if isinstance(e, (int, float)) and math.isfinite(e) else math.nan


def accumulated(rows: list[dict[str, Any]]) -> list[float]:
    """Per layer, its accumulated error (NaN where there is none)."""
    return [_error(r.get("accumulated")) for r in rows]


def series(cert: dict[str, Any]) -> dict[tuple[str, str], list[float]]:
    """{(voice, dtype): accumulated error per layer} for every voice and dtype with at least one computed error;
    the user's own model as ("source", its dtype)."""
    out = {}
    for v, e in cert["voices"].items():
        for d in DTYPES:
            errs = accumulated(e.get("layers", {}).get(d, []))
            if any(not math.isnan(x) for x in errs):
                out[(v, d)] = errs
    src = cert.get("source", {})
    if src.get("layers") and src.get("dtype") in DTYPES:
        errs = accumulated(src["layers"])
        if any(not math.isnan(x) for x in errs):
            out[("source", src["dtype"])] = errs
    return out


def figure(cert: dict[str, Any]):
    """The Figure: one panel per dtype."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    lines = series(cert)
    n = len(cert["model"]["layers"])
    fd = cert.get("first_diverging")
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(DTYPES), squeeze=False)[0]
    for ax, d in zip(axes, DTYPES, strict=True):
        floor = FLOOR * float(np.finfo(d).eps)
        mine = {who: errs for (who, dt), errs in lines.items() if dt == d}
        markers = "o" if n <= 40 else None
        zero = False
        for who, errs in mine.items():
            y = np.array(errs, dtype=float)
            zero |= bool(np.any(y == 0))
            y = np.where(y == 0, floor, y)
            label = f"source ({cert['source'].get('source', '')})" if who == "source" else who
            ax.plot(np.arange(len(y)), y, marker=markers, markersize=3, linewidth=1.2, label=label,
                    gid="source" if who == "source" else VOICE + who, linestyle="--" if who == "source" else "-")  # fmt: skip
        bar = cert["bars"].get(d)
        if bar is not None:
            ax.axhline(bar, color="red", linestyle="--", linewidth=1, label=f"bar {bar:g}", gid="bar")
        if fd:
            ax.axvline(fd["index"], color="black", linestyle=":", linewidth=1.2,
                       label=f"first diverging: {fd['name']} (#{fd['index']})", gid="first_diverging")  # fmt: skip
        ax.set_yscale("log")
        ax.set_xlim(-0.5, max(n - 0.5, 0.5))
        ax.set_xlabel("layer index")
        ax.set_ylabel("accumulated relative error")
        ax.set_title(f"{d} (bar {bar:g})" if bar is not None else d)
        ax.grid(True, which="major", alpha=0.3)
        if not mine:
            ax.text(0.5, 0.5, f"no voice computed {d}", transform=ax.transAxes, ha="center", va="center")
        if zero:
            ax.text(0.01, 0.01, f"an error of exactly 0 is drawn at {floor:.1e}", transform=ax.transAxes, fontsize=8)
        ax.legend(fontsize=7, loc="best", ncols=2)
    fig.suptitle(f"{cert['model']['name']}: the accumulated error of each voice through its {n} layers")
    return fig


def png(cert: dict[str, Any]) -> bytes:
    """certificate.png's bytes."""
    buf = io.BytesIO()
    figure(cert).savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return buf.getvalue()


__all__ = ["DTYPES", "FLOOR", "VOICE", "accumulated", "figure", "png", "series"]
