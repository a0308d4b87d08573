"""Scaling plots: one PNG per (work, sweep) of the hidden / seq_len / batch sweeps, GFLOP/s (or time,
where a row has no FLOP count) against the swept size, one line per implementation and mode (one
colour each, one legend), one panel per pass, machine, device, precision and variant. Written beside
the Markdown with matplotlib's Agg backend."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .markdown import atomic_write, slug
from .tables import SWEEP_AXIS

MAX_PANELS_PER_ROW = 3


def _axis(g: pd.DataFrame, sweep: str) -> str | None:
    """The size the sweep varies: H, T or B by name, else the one size key that varies."""
    axis = SWEEP_AXIS.get(sweep)
    values = lambda k: {s.get(k) for s in g["sizes"]}
    if axis and len(values(axis)) > 1:
        return axis
    varying = [k for k in sorted({k for s in g["sizes"] for k in s}) if len(values(k)) > 1]
    return varying[0] if len(varying) == 1 else None


def plan(df: pd.DataFrame) -> list[dict]:
    """What would be drawn: one entry per (work, sweep) with its axis and rows."""
    out = []
    sweeps = df[df["sweep"].isin(list(SWEEP_AXIS))]
    for (work, sweep), g in sweeps.groupby(["work", "sweep"], sort=True):
        axis = _axis(g, sweep)
        if axis is None:
            continue
        out.append({"work": work, "sweep": sweep, "axis": axis, "rows": g})
    return out


def draw(item: dict, path: Path) -> None:
    """Draw one plan entry to `path` (atomically)."""
    import matplotlib  # here, not at the top: --no-plots and plain planning never pay for it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogLocator, NullLocator, StrMethodFormatter

    g, axis = item["rows"], item["axis"]
    use_flops = bool(g["flops_s"].notna().all())
    panels = list(g.groupby(["pass", "machine", "device", "precision", "variant"], sort=True))
    names = sorted({(i, m) for i, m in zip(g["impl"], g["mode"])})
    colour = {n: plt.get_cmap("tab10")(k % 10) for k, n in enumerate(names)}
    marker = {n: "osD^v<>"[k // 10 % 7] for k, n in enumerate(names)}
    ncols = 2 if len(panels) == 4 else min(len(panels), MAX_PANELS_PER_ROW)  # no empty axes: each costs
    nrows = -(-len(panels) // ncols)
    legend_w = 1.6  # inches on the right for the one legend
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols + legend_w, 2.8 * nrows + 0.4), squeeze=False)
    try:
        for ax, (title, p) in zip(axes.flat, panels):
            xs = set()
            for (impl, mode), line in p.groupby(["impl", "mode"], sort=True):
                line = line.assign(x=[s.get(axis) for s in line["sizes"]]).sort_values("x")
                xs.update(line["x"])
                y = line["flops_s"] / 1e9 if use_flops else line["t_median"] * 1e3
                ax.plot(line["x"], y, marker=marker[(impl, mode)], markersize=3, color=colour[(impl, mode)])
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            # Few tick labels: text layout is most of matplotlib's time (the 500-row bar is 5 s).
            ticks = sorted(xs)
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.xaxis.set_minor_locator(NullLocator())
            ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
            ax.yaxis.set_minor_locator(NullLocator())
            # a text in the corner, not set_title: title placement is a third of matplotlib's draw time
            ax.text(0.0, 1.02, " · ".join(str(t) for t in title if t), transform=ax.transAxes, fontsize=8)
            ax.set_xlabel(axis, fontsize=8)
            ax.set_ylabel("GFLOP/s" if use_flops else "median time (ms)", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(True, alpha=0.3)
        for ax in list(axes.flat)[len(panels):]:
            ax.set_visible(False)
        handles = [plt.Line2D([], [], color=colour[n], marker=marker[n], markersize=3) for n in names]
        fig.legend(handles, [i if m in ("", i) else f"{i} ({m})" for i, m in names], loc="upper right", fontsize=7,
                   frameon=False)  # fmt: skip
        fig.suptitle(f"{item['work']} · {item['sweep']} sweep", fontsize=9, x=0.02, ha="left")
        width, height = fig.get_size_inches()
        fig.subplots_adjust(left=0.6 / width, right=1 - legend_w / width, bottom=0.45 / height,
                            top=1 - 0.6 / height, wspace=0.35, hspace=0.55)  # fixed: tight_layout costs ~0.6 s
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=80))
    finally:
        plt.close(fig)


def file_name(stem: str, item: dict) -> str:
    return slug(stem, item["work"], item["sweep"]) + ".png"
