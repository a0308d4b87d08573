"""Read and validate pytest-benchmark JSON runs into pandas frames (the issue 5 -> 6 row contract).

Every problem raises ReportInputError naming the file and what is wrong with it (the row and the
field, for rows), before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

SUPPORTED_SCHEMAS = (1,)
TOP_KEYS = ("machine_info", "commit_info", "benchmarks", "datetime", "version")
STATS_KEYS = ("min", "max", "mean", "stddev", "rounds", "median", "iqr", "q1", "q3", "iterations")
ROW_KEYS = (  # extra_info of a kind "row" benchmark (DESIGN.md, "Benchmark rows")
    "schema", "kind", "impl", "framework", "framework_version", "mode", "device", "dtype", "precision",
    "work", "variant", "pass", "shape", "sizes", "sweep", "profile", "flops", "flop_convention", "bytes",
    "max_rel_err", "tolerance", "err_ok",
)
CEILING_KEYS = ("schema", "kind", "impl", "device", "dtype", "precision", "work", "shape", "flops", "bytes")
CEILING_WORKS = ("matmul", "copy")
"""The ceilings shares are taken against; other kind "ceiling" rows (bench's `empty`, the harness's own
cost) are reported as measured times."""
KEY = ("work", "pass", "variant", "device", "precision", "sweep", "shape", "impl", "mode")
"""What identifies a row across runs and machines."""
PAIRED_KEYS = ("group", "reference", "ratio", "ci95", "blocks", "log_ratios")
"""extra_info["paired"] of a row timed in a comparison group (bench/groups.py); optional: runs made before
paired timing have none, and their ratios are read as unpaired medians."""
MAX_LISTED = 8


class ReportInputError(ValueError):
    """Input the report builder cannot use; the message names the file and the problem."""


@dataclass
class Run:
    path: str
    sha256: str
    raw: dict
    schema: int
    rows: pd.DataFrame  # one line per kind "row" benchmark: KEY, extra_info fields, stats
    ceilings: pd.DataFrame  # kind "ceiling": work matmul / copy, device, precision, rate
    warnings: list[str] = field(default_factory=list)
    label: str = ""  # machine label, set by `label_machines`

    @property
    def machine_info(self) -> dict:
        return self.raw["machine_info"]

    @property
    def nnparity(self) -> dict:
        return self.raw["machine_info"].get("nnparity") or {}

    @property
    def machine_key(self) -> tuple[str, str]:
        """Two runs are the same machine when node and CPU agree."""
        mi = self.machine_info
        cpu = (mi.get("cpu") or {}).get("brand_raw") or self.nnparity.get("cpu_model") or ""
        return (str(mi.get("node", "")), str(cpu))

    @property
    def tree(self) -> dict | None:
        """The commit and the files that differed from it when the run was made (bench/machine.py tree)."""
        t = self.nnparity.get("tree")
        return t if isinstance(t, dict) else None

    @property
    def datetime(self) -> str:
        return str(self.raw.get("datetime", ""))

    @property
    def contention(self) -> dict | None:
        """bench/contention.py's verdict for the run (None: not recorded)."""
        v = self.nnparity.get("contention")
        return v if isinstance(v, dict) else None

    @property
    def paired(self) -> bool:
        """Every row was timed in a comparison group (has extra_info.paired)."""
        return not self.rows.empty and bool(self.rows["p_ratio"].notna().all())


def _fail(path: str, problem: str) -> ReportInputError:
    return ReportInputError(f"{path}: {problem}")


def _row_name(i: int, b: dict) -> str:
    return f"benchmark #{i} {b.get('fullname') or b.get('name') or '(unnamed)'!r}"


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_benchmark(i: int, b, problems: list[str]) -> None:
    if not isinstance(b, dict):
        problems.append(f"benchmark #{i} is a {type(b).__name__}, not an object")
        return
    name = _row_name(i, b)
    info, stats = b.get("extra_info"), b.get("stats")
    if not isinstance(info, dict):
        problems.append(f"{name}: missing field 'extra_info'")
        return
    if not isinstance(stats, dict):
        problems.append(f"{name}: missing field 'stats'")
        return
    kind = info.get("kind")
    if kind not in ("row", "ceiling"):
        problems.append(f"{name}: field 'extra_info.kind' is {kind!r}, expected 'row' or 'ceiling'")
        return
    keys = ROW_KEYS if kind == "row" else CEILING_KEYS
    missing = [f"extra_info.{k}" for k in keys if k not in info]
    missing += [f"stats.{k}" for k in STATS_KEYS if k not in stats]
    if missing:
        problems.append(f"{name}: missing field{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
        return
    bad = [f"stats.{k}={stats[k]!r}" for k in STATS_KEYS if not _number(stats[k])]
    if not bad and stats["median"] <= 0:
        bad.append(f"stats.median={stats['median']!r} (must be > 0)")
    for k in ("flops", "bytes"):
        v = info[k]
        if v is not None and not (_number(v) and v >= 0):
            bad.append(f"extra_info.{k}={v!r} (a count >= 0 or null)")
    if kind == "row":
        if not isinstance(info["sizes"], dict):
            bad.append(f"extra_info.sizes={info['sizes']!r} (an object like {{'B': 32}})")
        if info["err_ok"] not in (True, False, None):
            bad.append(f"extra_info.err_ok={info['err_ok']!r} (true, false or null)")
        if info["max_rel_err"] is not None and not isinstance(info["max_rel_err"], (int, float)):
            bad.append(f"extra_info.max_rel_err={info['max_rel_err']!r} (a number or null)")
    if kind == "row" and "paired" in info:
        bad += _check_paired(info["paired"])
    if bad:
        problems.append(f"{name}: bad value{'s' if len(bad) > 1 else ''} {', '.join(bad)}")


def _check_paired(p) -> list[str]:
    if not isinstance(p, dict):
        return [f"extra_info.paired={p!r} (an object)"]
    missing = [k for k in PAIRED_KEYS if k not in p]
    if missing:
        return [f"extra_info.paired lacks {', '.join(missing)}"]
    bad = []
    if not (_number(p["ratio"]) and p["ratio"] > 0):
        bad.append(f"extra_info.paired.ratio={p['ratio']!r} (a positive number)")
    ci = p["ci95"]
    if ci is not None and not (isinstance(ci, list) and len(ci) == 2 and all(_number(v) and v > 0 for v in ci)
                               and ci[0] <= ci[1]):  # fmt: skip
        bad.append(f"extra_info.paired.ci95={ci!r} ([lo, hi] with 0 < lo <= hi, or null)")
    lr = p["log_ratios"]
    if not (isinstance(lr, list) and all(_number(v) for v in lr) and isinstance(p["blocks"], int) and len(lr) == p["blocks"]):
        bad.append(f"extra_info.paired.log_ratios: {p['blocks']!r} blocks need as many finite numbers")
    ep = p.get("epochs")
    if ep is not None and not (isinstance(ep, list) and len(ep) == len(lr) and all(isinstance(e, int) for e in ep)):
        bad.append(f"extra_info.paired.epochs: one epoch number per block ({len(lr) if isinstance(lr, list) else '?'})")
    return bad


def _frame(benchmarks: list[dict], kind: str) -> pd.DataFrame:
    recs = []
    for b in benchmarks:
        info, st = b["extra_info"], b["stats"]
        if info["kind"] != kind:
            continue
        rec = {k: info.get(k) for k in (ROW_KEYS if kind == "row" else CEILING_KEYS)}
        rec.update(err_note=info.get("err_note"), bound=info.get("bound"), name=b.get("name"),
                   fullname=b.get("fullname"), id=info.get("id"),
                   cuda_event_median_s=info.get("cuda_event_median_s"),
                   cuda_event_rounds=info.get("cuda_event_rounds"), params=info.get("params"),
                   calibrated_tolerance=info.get("calibrated_tolerance"))  # fmt: skip
        p = info.get("paired") if isinstance(info.get("paired"), dict) else {}
        ci = p.get("ci95") or (None, None)
        rec.update(p_group=p.get("group"), p_ref=p.get("reference"), p_ratio=p.get("ratio"), p_lo=ci[0], p_hi=ci[1],
                   p_blocks=p.get("blocks"), p_lr=tuple(p["log_ratios"]) if p else None,
                   p_epochs=tuple(p["epochs"]) if p.get("epochs") else None,
                   p_processes=tuple(p["processes"]) if p.get("processes") else None,
                   p_model=p["model"] if isinstance(p.get("model"), dict) else None,
                   p_times=tuple(p.get("times_s") or ()) or None, p_machine=p.get("machine"))  # fmt: skip
        rec.update({f"t_{k}": float(st[k]) for k in ("median", "iqr", "stddev", "q1", "q3", "min", "max", "mean")})
        rec.update(rounds=int(st["rounds"]), iterations=int(st["iterations"]))
        recs.append(rec)
    df = pd.DataFrame.from_records(recs)
    if df.empty:
        return df
    for k in ("variant", "sweep", "mode", "pass", "shape", "impl", "device", "precision", "work"):
        if k in df:
            df[k] = df[k].map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
    if "err_ok" in df:  # Python True / False / None, so `is False` reads the same everywhere
        df["err_ok"] = pd.Series([None if v is None else bool(v) for v in df["err_ok"]], index=df.index, dtype=object)
    return df


def _read(path: str) -> tuple[bytes, dict]:
    """The file's bytes and its JSON, checked to have pytest-benchmark's top-level layout and rows."""
    try:
        blob = Path(path).read_bytes()
    except OSError as e:
        raise _fail(path, f"cannot read ({e.strerror or e})") from e
    try:
        data = json.loads(blob)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise _fail(path, f"not JSON ({e})") from e
    if not isinstance(data, dict):
        raise _fail(path, f"not pytest-benchmark JSON (top level is a {type(data).__name__}, not an object)")
    missing = [k for k in TOP_KEYS if k not in data]
    if missing:
        raise _fail(path, f"not pytest-benchmark JSON (missing top-level key{'s' if len(missing) > 1 else ''} "
                          f"{', '.join(missing)})")  # fmt: skip
    if not isinstance(data["benchmarks"], list) or not isinstance(data["machine_info"], dict):
        raise _fail(path, "not pytest-benchmark JSON ('benchmarks' must be a list, 'machine_info' an object)")
    if not data["benchmarks"]:
        raise _fail(path, "run has no rows (the 'benchmarks' list is empty)")
    return blob, data


def _schema(path: str, data: dict):
    """The one row-schema version of a run (read before the fields, whose set depends on it)."""
    found = {repr(b["extra_info"]["schema"]): b["extra_info"]["schema"] for b in data["benchmarks"]
             if isinstance(b, dict) and isinstance(b.get("extra_info"), dict) and "schema" in b["extra_info"]}  # fmt: skip
    if not found:
        raise _fail(path, "not nnparity benchmark JSON (no benchmark has extra_info.schema; "
                          "see DESIGN.md, 'Benchmark rows')")  # fmt: skip
    if len(found) > 1:
        raise _fail(path, f"rows of different schema versions in one run: {', '.join(sorted(found))}")
    return next(iter(found.values()))


def _check_supported(path: str, schema) -> None:
    if schema not in SUPPORTED_SCHEMAS or isinstance(schema, bool):
        raise _fail(path, f"row schema {schema!r} is not supported (this builder reads schema "
                          f"{', '.join(map(str, SUPPORTED_SCHEMAS))})")  # fmt: skip


def _validate(path: str, blob: bytes, data: dict, schema) -> Run:
    benchmarks = data["benchmarks"]
    problems: list[str] = []
    for i, b in enumerate(benchmarks):
        _check_benchmark(i, b, problems)
    if problems:
        more = f" (and {len(problems) - MAX_LISTED} more)" if len(problems) > MAX_LISTED else ""
        raise _fail(path, "; ".join(problems[:MAX_LISTED]) + more)
    rows, ceilings = _frame(benchmarks, "row"), _frame(benchmarks, "ceiling")
    if rows.empty:
        raise _fail(path, f"run has no rows: {len(benchmarks)} benchmarks, none with extra_info.kind 'row'")
    run = Run(path, hashlib.sha256(blob).hexdigest(), data, schema, rows, ceilings)
    dup = rows.duplicated(list(KEY), keep="first")
    if dup.any():
        names = ", ".join(rows.loc[dup, "name"].astype(str).head(MAX_LISTED))
        run.warnings.append(f"{path}: {int(dup.sum())} rows repeat another row's key and were left out: {names}")
        run.rows = rows.loc[~dup].reset_index(drop=True)
    if not run.nnparity:
        run.warnings.append(f"{path}: machine_info has no 'nnparity' entry; environment facts not recorded")
    return run


def load_run(path: str | Path) -> Run:
    """Read one pytest-benchmark JSON file and validate it against the row contract."""
    return load_runs([str(path)], label=False)[0]


def load_runs(paths: list[str], label: bool = True) -> list[Run]:
    """Load every run; all must speak the same, supported row schema. Nothing is half-accepted:
    the first problem found raises ReportInputError."""
    if not paths:
        raise ReportInputError("no benchmark JSON given")
    read = [(str(p), *_read(str(p))) for p in paths]
    schemas = [_schema(p, data) for p, _, data in read]
    if len({repr(s) for s in schemas}) > 1:
        listed = ", ".join(f"{p} (schema {s!r})" for (p, _, _), s in zip(read, schemas))
        raise ReportInputError(f"runs of different schema versions cannot be merged: {listed}")
    for (p, _, _), s in zip(read, schemas):
        _check_supported(p, s)
    runs = [_validate(p, blob, data, s) for (p, blob, data), s in zip(read, schemas)]
    if label:
        label_machines(runs)
    return runs


def hardware_label(run: Run) -> str:
    """The machine's name: the label the run recorded (bench: --bench-label, else CPU model, cores, GPU model
    and count), else the same built from its recorded facts; the node name only when nothing else is known."""
    f = run.nnparity
    if isinstance(f.get("label"), str) and f["label"]:
        return f["label"]
    cpu = f.get("cpu_model") or (run.machine_info.get("cpu") or {}).get("brand_raw")
    if not cpu:
        return str(run.machine_info.get("node", "")) or "machine"
    cpu = " ".join(str(cpu).replace("(R)", "").replace("(TM)", "").split())
    cores = f.get("cores")
    out = f"{cpu}, {cores} core{'s' if cores != 1 else ''}" if cores else cpu
    gpu = f.get("gpu") if isinstance(f.get("gpu"), dict) else None
    if gpu:
        out += f", {gpu.get('count') or 1}x {gpu.get('name') or 'GPU'}"
    return out


def label_machines(runs: list[Run]) -> None:
    """Column labels from the hardware (hardware_label), made unique where two machines share one."""
    keys: dict[tuple[str, str], str] = {}
    for r in runs:
        if r.machine_key not in keys:
            base = hardware_label(r)
            taken = set(keys.values())
            label, n = base, 2
            while label in taken:
                label, n = f"{base}#{n}", n + 1
            keys[r.machine_key] = label
        r.label = keys[r.machine_key]
