"""The numbers of a report as pandas frames: ceilings, ratios, shares, headline, merge, comparison.

Conventions: `median` and `iqr` are pytest-benchmark's per-call seconds. A row's ratio is its paired ratio to
its comparison group's fastest, with a 95% interval (extra_info["paired"], bench/groups.py); a row timed
before paired timing has only its median over the fastest median of its group (same work, pass, variant,
device, precision, sweep and shape), marked unpaired.
Its share of the ceiling: FLOP/s over the run's best `matmul` ceiling of the same device and precision
for a row whose `bound` is "compute", bytes/s over the best `copy` ceiling of the same device (and
precision, where measured) for "memory". A row that declares no bound gets the larger of the two
shares, roofline-style: that is the ceiling it is up against.
"""

from __future__ import annotations

import math

import pandas as pd

from .fmt import fmt_err, fmt_pct, fmt_rate, fmt_time, ratio_cell
from .load import CEILING_WORKS, KEY, Run

GROUP = ("work", "pass", "variant", "device", "precision", "sweep", "shape")
SECTION = ("work", "pass")
SUBSECTION = ("device", "precision", "variant")
SWEEP_AXIS = {"hidden": "H", "seq_len": "T", "batch": "B"}


# --------------------------------------------------------------------------- ceilings and ratios


def ceiling_rates(run: Run) -> dict[tuple[str, str, str], float]:
    """(work, device, precision) -> best measured rate: FLOP/s for matmul, bytes/s for copy."""
    out: dict[tuple[str, str, str], float] = {}
    if run.ceilings.empty:
        return out
    for _, c in run.ceilings[run.ceilings["work"].isin(CEILING_WORKS)].iterrows():
        amount = c["flops"] if c["work"] == "matmul" else c["bytes"]
        if amount is None or not (amount > 0):
            continue
        k = (c["work"], c["device"], c["precision"])
        out[k] = max(out.get(k, 0.0), float(amount) / c["t_median"])
    return out


def enrich(run: Run) -> pd.DataFrame:
    """The run's rows with machine, ratio to the fastest, FLOP/s, bytes/s, ceiling share and bound."""
    df = run.rows.copy()
    df["machine"] = run.label
    df["ratio"] = ratios(df)
    flops = pd.to_numeric(df["flops"], errors="coerce")
    nbytes = pd.to_numeric(df["bytes"], errors="coerce")
    df["flops_s"] = (flops / df["t_median"]).where(flops > 0)
    df["bytes_s"] = (nbytes / df["t_median"]).where(nbytes > 0)
    rates = ceiling_rates(run)
    copy_any = {}
    for (w, dev, _), v in rates.items():
        if w == "copy":
            copy_any[dev] = max(copy_any.get(dev, 0.0), v)
    shares, bounds = [], []
    declared = df["bound"] if "bound" in df else pd.Series([None] * len(df), index=df.index)
    for (_, r), bound in zip(df.iterrows(), declared):
        mm = rates.get(("matmul", r["device"], r["precision"]))
        cp = rates.get(("copy", r["device"], r["precision"])) or copy_any.get(r["device"])
        f = r["flops_s"] / mm if mm and r["flops_s"] > 0 else None
        b = r["bytes_s"] / cp if cp and r["bytes_s"] > 0 else None
        if bound == "compute":
            b = None
        elif bound == "memory":
            f = None
        if f is None and b is None:
            shares.append(math.nan), bounds.append("")
        elif b is None or (f is not None and f >= b):
            shares.append(f), bounds.append("matmul")
        else:
            shares.append(b), bounds.append("copy")
    df["share"], df["bound"] = shares, bounds
    df["size_key"] = [tuple(sorted((str(k), v) for k, v in s.items())) for s in df["sizes"]]
    return df


def machine_rows(runs: list[Run]) -> pd.DataFrame:
    """One machine's rows over its runs (oldest first): each row from the latest run that has it, so a
    quick and a deepbench run of one box make one table; shares stay against each row's own run's
    ceilings; ratios are recomputed over the union."""
    frames = [enrich(r).assign(run=r.path) for r in runs]
    df = pd.concat(frames, ignore_index=True).drop_duplicates(list(KEY), keep="last").reset_index(drop=True)
    df["ratio"] = ratios(df)
    return df


def ratios(df: pd.DataFrame) -> pd.Series:
    """The paired ratio where a row has one, else its median over its group's fastest median (unpaired)."""
    unpaired = df["t_median"] / df.groupby(list(GROUP), dropna=False)["t_median"].transform("min")
    p = pd.to_numeric(df["p_ratio"], errors="coerce") if "p_ratio" in df else pd.Series(math.nan, index=df.index)
    return p.where(p.notna(), unpaired)


def _ordered(df: pd.DataFrame) -> pd.DataFrame:
    def swept(r):
        axis = SWEEP_AXIS.get(r["sweep"])
        v = r["sizes"].get(axis) if axis else None
        return v if isinstance(v, (int, float)) else -1

    keys = sorted(df.index, key=lambda i: (df.at[i, "sweep"], swept(df.loc[i]), df.at[i, "size_key"],
                                           df.at[i, "shape"], df.at[i, "t_median"]))  # fmt: skip
    return df.loc[keys]


def detail_table(df: pd.DataFrame) -> pd.DataFrame:
    """One subsection's rows (one machine): implementations × sizes with every per-row figure."""
    df = _ordered(df)
    return pd.DataFrame({
        "sweep": df["sweep"],
        "shape": df["shape"],
        "implementation": df["impl"],
        "mode": df["mode"],
        "median": df["t_median"].map(fmt_time),
        "IQR": df["t_iqr"].map(fmt_time),
        "blocks × loops": [f"{r} × {i}" for r, i in zip(df["rounds"], df["iterations"])],
        "× fastest (95% CI)": [ratio_cell(r) for _, r in df.iterrows()],
        "GFLOP/s": df["flops_s"].map(fmt_rate),
        "GB/s": df["bytes_s"].map(fmt_rate),
        "ceiling share": [fmt_pct(s) + (f" {b}" if b else "") for s, b in zip(df["share"], df["bound"])],
        "max rel err vs float64": df.apply(fmt_err, axis=1),
    })  # fmt: skip


def merged_table(df: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """One subsection across machines: a column per machine, each cell 'median (× fastest there, 95% CI)'."""
    base = _ordered(df).drop_duplicates(["sweep", "shape", "impl", "mode"])
    out = {"sweep": list(base["sweep"]), "shape": list(base["shape"]),
           "implementation": list(base["impl"]), "mode": list(base["mode"])}  # fmt: skip
    idx = df.set_index(["sweep", "shape", "impl", "mode", "machine"])
    for label in labels:
        cells = []
        for _, b in base.iterrows():
            k = (b["sweep"], b["shape"], b["impl"], b["mode"], label)
            if k not in idx.index:
                cells.append("—")
                continue
            r = idx.loc[k]
            cell = f"{fmt_time(r['t_median'])} ({ratio_cell(r)})"
            cells.append(cell + (" **FAIL**" if r["err_ok"] is False else ""))
        out[label] = cells
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- several runs


def environment(runs: list[Run]) -> pd.DataFrame:
    """Facts per run (a column each): machine, CPU/GPU, versions, BLAS, threads, provenance."""

    def facts(r: Run) -> dict[str, str]:
        mi, nn = r.machine_info, r.nnparity
        cpu = mi.get("cpu") or {}
        gpu = nn.get("gpu")
        versions = nn.get("versions") or {}
        commit = r.raw.get("commit_info") or {}
        blas = _blas(nn.get("blas"))
        return {
            "machine (node)": mi.get("node", "?"),
            "system": f"{mi.get('system', '?')} {mi.get('release', '')} {mi.get('machine', '')}".strip(),
            "CPU": nn.get("cpu_model") or cpu.get("brand_raw") or mi.get("processor") or "not recorded",
            "cores / threads": f"{nn.get('cores', cpu.get('count', '?'))} / {nn.get('threads', '?')}"
                               + (f" (affinity {nn['affinity']})" if nn.get("affinity") else ""),
            "torch threads": str(nn.get("torch_threads", "not recorded")),
            "thread variables": ", ".join(f"{k}={v}" for k, v in (nn.get("env") or {}).items()) or "none set",
            "GPU": (", ".join(f"{k} {v}" for k, v in gpu.items() if v is not None) if isinstance(gpu, dict)
                    else "none" if "gpu" in nn else "not recorded"),
            "BLAS": str(blas) if blas else "not recorded",
            **{v: str(versions.get(v, "not recorded")) for v in ("python", "numpy", "torch", "tensorflow", "keras")},
            "pytest-benchmark": str(r.raw.get("version", "?")),
            "run at": r.datetime,
            "commit": f"{str(commit.get('id', '?'))[:12]}{' (dirty)' if commit.get('dirty') else ''}",
            "profile": ", ".join(sorted({str(p) for p in r.rows["profile"]})),
            "rows / ceilings": f"{len(r.rows)} / {len(r.ceilings)}",
            "file": r.path,
        }  # fmt: skip

    cols = {}
    for i, r in enumerate(runs):
        name = r.label if sum(x.label == r.label for x in runs) == 1 else f"{r.label} (run {i + 1})"
        cols[name] = facts(r)
    return pd.DataFrame(cols).rename_axis("").reset_index()


def _blas(blas) -> str:
    """bench/machine.py's {"numpy_build": {...}, "loaded": [threadpoolctl entries]} in one line."""
    if not isinstance(blas, dict):
        return str(blas) if blas else ""
    parts = []
    build = blas.get("numpy_build")
    if isinstance(build, dict) and build:
        parts.append("numpy built with " + " ".join(str(build[k]) for k in ("name", "version") if build.get(k)))
    for lib in blas.get("loaded") or []:
        if isinstance(lib, dict):
            extra = ", ".join(f"{lib[k]}" + (" threads" if k == "num_threads" else "")
                              for k in ("num_threads", "threading_layer", "architecture") if lib.get(k))  # fmt: skip
            parts.append(f"{lib.get('internal_api', '?')} {lib.get('version') or ''}".strip() + (f" ({extra})" if extra else ""))
    rest = {k: v for k, v in blas.items() if k not in ("numpy_build", "loaded")}
    parts += [f"{k}: {v}" for k, v in rest.items()]
    return "; ".join(parts)


def ceilings_table(runs: list[Run]) -> pd.DataFrame:
    """The best matmul and copy rate per device and precision, and other ceilings (the harness's own
    cost, bench's `empty`) as their fastest median, with the library that reached it."""
    recs = []
    for r in runs:
        for (work, dev, prec), g in (r.ceilings.groupby(["work", "device", "precision"], sort=True)
                                     if not r.ceilings.empty else []):  # fmt: skip
            amount = pd.to_numeric(g["flops" if work == "matmul" else "bytes"], errors="coerce")
            rate = amount / g["t_median"]
            if work in CEILING_WORKS and (rate > 0).any():
                best = g.loc[rate.idxmax()]
                value = f"{rate.max() / 1e9:.3g} {'GFLOP/s' if work == 'matmul' else 'GB/s'}"
            else:
                best = g.loc[g["t_median"].idxmin()]
                value = f"{fmt_time(best['t_median'])} per call"
            recs.append({"machine": r.label, "file": r.path, "device": dev, "precision": prec, "ceiling": work,
                         "best": value, "by": best["impl"], "shape": best["shape"]})  # fmt: skip
    return pd.DataFrame(recs)


def by_machine(runs: list[Run]) -> dict[tuple[str, str], list[Run]]:
    """Runs grouped by machine, oldest first (pytest-benchmark's datetime is ISO 8601)."""
    out: dict[tuple[str, str], list[Run]] = {}
    for r in runs:
        out.setdefault(r.machine_key, []).append(r)
    return {k: sorted(v, key=lambda r: r.datetime) for k, v in out.items()}
