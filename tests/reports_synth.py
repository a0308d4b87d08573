"""Synthetic pytest-benchmark 5 JSON for the report builder's tests, in the real file layout
(machine_info with cpuinfo's `cpu`, commit_info, benchmarks[] with options and stats computed by
pytest-benchmark's own Stats from made-up samples, datetime, version) and the nnparity row contract
(DESIGN.md, "Benchmark rows"). Medians are exactly what a test asks for; the IQR follows from
`spread` (samples median * (1 + spread * k), k = -2..2, five rounds: IQR = 2.5 * spread * median).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from pytest_benchmark.stats import Stats

OPTIONS = {"disable_gc": False, "timer": "perf_counter", "min_rounds": 5, "max_time": 1.0,
           "min_time": 5e-06, "precision": None, "confidence": None, "warmup": False}  # fmt: skip
FRAMEWORK = {"numpy": "numpy", "torch": "torch", "tensorflow": "tensorflow", "torch_nn": "torch", "keras": "keras"}
DEFAULT_MODE = {"numpy": "numpy", "torch": "eager", "tensorflow": "tf.function", "torch_nn": "eager",
                "keras": "tf.function"}  # fmt: skip
SEED_GRU_SIZES = {"B": 32, "T": 100, "I": 64, "H": 128}


def stats(median: float, spread: float = 0.02, rounds: int = 5) -> dict:
    """pytest-benchmark's stats dict (with data) for samples centred exactly on `median`."""
    s = Stats()
    half = rounds // 2
    for k in range(-half, half + 1):
        s.update(median * (1 + spread * k))
    d = s.as_dict()
    d["data"] = list(s.data)
    d["iterations"] = 1
    return d


def shape_label(sizes: dict) -> str:
    return " ".join(f"{k}{v}" for k, v in sizes.items())


def row(impl: str, median: float, *, work: str = "seed_gru_model", mode: str | None = None, device: str = "cpu",
        precision: str = "float32", pass_: str = "fwd", variant: str | None = "reset_after",
        sizes: dict | None = None, sweep: str = "seed", profile: str = "quick", flops: int | None = 10**9,
        bytes_: int | None = 10**6, err: float | None = 3e-7, tol: float = 2e-5, err_ok: bool | None = None,
        spread: float = 0.02, name: str | None = None, **extra) -> dict:  # fmt: skip
    """One kind "row" benchmark. err_ok defaults to err <= tol (None where err is None)."""
    sizes = dict(SEED_GRU_SIZES if sizes is None else sizes)
    mode = mode or DEFAULT_MODE.get(impl, "eager")
    if variant is not None and "gru" not in work:
        variant = None
    label = shape_label(sizes)
    param = f"{work}-{impl}-{mode}-{device}-{precision}-{pass_}-{variant}-{sweep}-{label.replace(' ', '')}"
    info = {
        "schema": 1, "kind": "row", "impl": impl, "framework": FRAMEWORK.get(impl, impl),
        "framework_version": "9.9.9", "mode": mode, "device": device, "dtype": precision if precision in
        ("float64", "float32", "float16", "bfloat16") else "float32", "precision": precision, "work": work,
        "variant": variant, "pass": pass_, "shape": label, "sizes": sizes, "sweep": sweep, "profile": profile,
        "flops": flops, "flop_convention": "gemm", "bytes": bytes_, "max_rel_err": err, "tolerance": tol,
        "err_ok": (None if err is None else err <= tol) if err_ok is None else err_ok,
    }  # fmt: skip
    if err is None:
        info["err_note"] = "not measured in this synthetic row"
    info.update(extra)
    name = name or f"test_{work}[{param}]"
    return {"group": f"{work} {pass_}", "name": name, "fullname": f"bench/test_{work}.py::{name}",
            "params": {"case": param}, "param": param, "extra_info": info, "options": dict(OPTIONS),
            "stats": stats(median, spread)}  # fmt: skip


def ceiling(work: str, median: float, *, device: str = "cpu", precision: str = "float32", flops: int = 0,
            bytes_: int = 0, impl: str = "torch") -> dict:  # fmt: skip
    """A kind "ceiling" benchmark: `matmul` (rate = flops / median) or `copy` (bytes / median)."""
    name = f"test_ceiling[{work}-{impl}-{device}-{precision}]"
    info = {"schema": 1, "kind": "ceiling", "impl": impl, "framework": impl, "framework_version": "9.9.9",
            "mode": "eager", "device": device, "dtype": precision, "precision": precision, "work": work,
            "variant": None, "pass": "fwd", "shape": "N4096", "sizes": {"N": 4096}, "sweep": "ceiling",
            "profile": "quick", "flops": flops, "flop_convention": "gemm", "bytes": bytes_,
            "max_rel_err": None, "tolerance": None, "err_ok": None}  # fmt: skip
    return {"group": "ceiling", "name": name, "fullname": f"bench/test_ceiling.py::{name}", "params": {},
            "param": f"{work}-{impl}-{device}-{precision}", "extra_info": info, "options": dict(OPTIONS),
            "stats": stats(median, 0.01)}  # fmt: skip


def machine_info(node: str = "boxA", cpu: str = "AMD EPYC 7B13", gpu: dict | None = None) -> dict:
    return {
        "node": node, "processor": "", "machine": "x86_64", "python_compiler": "GCC 12.2.0",
        "python_implementation": "CPython", "python_implementation_version": "3.11.7",
        "python_version": "3.11.7", "python_build": ["main", "May  9 2026 07:35:25"],
        "release": "6.1.0", "system": "Linux",
        "cpu": {"python_version": "3.11.7.final.0 (64 bit)", "cpuinfo_version": [9, 0, 0],
                "cpuinfo_version_string": "9.0.0", "arch": "X86_64", "bits": 64, "count": 2,
                "arch_string_raw": "x86_64", "vendor_id_raw": "AuthenticAMD", "brand_raw": cpu,
                "hz_advertised_friendly": "2.4454 GHz", "hz_actual_friendly": "2.4454 GHz",
                "hz_advertised": [2445432000, 0], "hz_actual": [2445432000, 0], "flags": ["avx2", "fma"],
                "l3_cache_size": 524288, "l2_cache_size": 1048576},
        "nnparity": {"cpu_model": cpu, "cores": 2, "threads": 2, "blas": "OpenBLAS 0.3.27 (numpy)",
                     "versions": {"python": "3.11.7", "numpy": "2.4.6", "torch": "2.13.0",
                                  "tensorflow": "2.21.0", "keras": "3.15.1"},
                     "gpu": gpu, "label": node},  # bench records its label (issue 19): here the node's name
    }  # fmt: skip


def run(benchmarks: list[dict], *, node: str = "boxA", cpu: str = "AMD EPYC 7B13", gpu: dict | None = None,
        when: str = "2026-11-26T12:00:00.000000+00:00") -> dict:  # fmt: skip
    return {"machine_info": machine_info(node, cpu, gpu),
            "commit_info": {"id": "0c05e9412345678900000000", "time": "2026-11-26T11:00:00+00:00",
                            "author_time": "2026-11-26T11:00:00+00:00", "dirty": False, "project": "nnparity",
                            "branch": "main"},
            "benchmarks": copy.deepcopy(benchmarks), "datetime": when, "version": "5.2.3"}  # fmt: skip


def write(path: Path, data) -> str:
    path.write_text(json.dumps(data, indent=4) if not isinstance(data, str) else data)
    return str(path)


def many_rows(n: int = 500) -> list[dict]:
    """A realistic-looking `n`-row run: works x impls x modes x precisions x sweeps, plus ceilings."""
    impls = ["numpy", "torch", "tensorflow", "torch_nn", "keras"]
    out = [ceiling("matmul", 0.01, flops=4 * 10**9, precision=p) for p in ("float32", "float64")]
    out += [ceiling("copy", 0.01, bytes_=2 * 10**8, precision=p) for p in ("float32", "float64")]
    out += [row(impl, 0.01 * (k + 1), work=w, sizes=SEED_GRU_SIZES if w == "seed_gru_model" else {"B": 32})
            for k, impl in enumerate(impls) for w in ("seed_gru_model", "seed_cnn_model")]  # fmt: skip
    sweeps = [("hidden", "H", [32, 64, 128, 256, 512]), ("seq_len", "T", [10, 25, 50, 100, 200]),
              ("batch", "B", [1, 8, 32, 64, 128])]  # fmt: skip
    i = 0
    while len(out) < n + 4:
        for work in ("gru", "conv2d", "dense", "max_pool2d"):
            for sweep, axis, values in sweeps:
                for v in values:
                    for impl in impls:
                        for prec in ("float32", "float64"):
                            for pass_ in ("fwd", "fwd+bwd"):
                                sizes = dict(SEED_GRU_SIZES, **{axis: v})
                                t = 1e-4 * (1 + impls.index(impl)) * v * (2 if prec == "float64" else 1)
                                out.append(row(impl, t, work=work, precision=prec, pass_=pass_, sizes=sizes,
                                               sweep=sweep, flops=10**6 * v, bytes_=10**4 * v,
                                               err=1e-7 * (1 + i % 7), tol=2e-5 if prec == "float32" else 1e-10,
                                               err_ok=i % 97 != 0))  # fmt: skip
                                i += 1
                                if len(out) >= n + 4:
                                    return out
    return out


# --------------------------------------------------------------------------- reading reports back


def cells(line: str) -> list[str]:
    """Split a Markdown table line on unescaped pipes (a backslash escapes the next character)."""
    out, cur, i = [], "", 0
    line = line.strip()
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line):
            cur += line[i : i + 2]
            i += 2
            continue
        if ch == "|":
            out.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    out.append(cur)
    return [c.strip() for c in out[1:-1]]  # a pipe table line starts and ends with `|`


def table_after(text: str, heading: str, nth: int = 0) -> list[dict[str, str]]:
    """The rows of the `nth` Markdown table after the first line that starts with `heading`."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(heading))
    found = -1
    i = start + 1
    while i < len(lines):
        if lines[i].startswith("|"):
            found += 1
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                block.append(lines[i])
                i += 1
            if found == nth:
                header = cells(block[0])
                return [dict(zip(header, cells(b))) for b in block[2:]]
        i += 1
    raise AssertionError(f"no table #{nth} after {heading!r}")


def paired_rows(medians: dict[str, float], *, noise: float = 0.01, blocks: int = 20, seed: int = 0,
                drift: float = 0.2, **kw) -> list[dict]:  # fmt: skip
    """Rows of one comparison group timed in paired blocks, as bench/groups.py writes them: block b gives
    implementation i the per-call time medians[i] * d_b * (1 + noise * e_ib), with a machine drift d_b shared
    by the block (spread `drift`) and independent noise e_ib ~ N(0, 1). stats and extra_info["paired"] come
    from those times (pytest-benchmark's Stats; bench.paired), so the intervals are what the harness gives."""
    import numpy as np

    from bench import paired

    g = np.random.default_rng(seed)
    d = np.exp(g.normal(0.0, drift, blocks))
    times = {i: (m * d * (1 + noise * g.standard_normal(blocks))).tolist() for i, m in medians.items()}
    ids = {i: f"{kw.get('work', 'seed_gru_model')}-{i}-{kw.get('precision', 'float32')}-{kw.get('pass_', 'fwd')}" for i in medians}
    ref, ratios = paired.group({ids[i]: t for i, t in times.items()})
    out = []
    for i, t in times.items():
        r = row(i, medians[i], id=ids[i], **kw)
        s = Stats()
        for v in t:
            s.update(v)
        r["stats"] = s.as_dict() | {"data": list(t), "iterations": 1}
        q = ratios[ids[i]]
        r["extra_info"]["paired"] = {
            "group": f"{kw.get('work', 'seed_gru_model')}-{kw.get('precision', 'float32')}-{kw.get('pass_', 'fwd')}",
            "reference": ref, "ratio": q.ratio, "ci95": list(q.ci95), "blocks": blocks,
            "log_ratios": list(q.log_ratios), "half_width": q.half_width, "times_s": t}  # fmt: skip
        out.append(r)
    return out


def contended(run_: dict, reasons: list[str], groups: list[str] | None = None) -> dict:
    """The run with bench/contention.py's verdict in machine_info (contended when `reasons` is non-empty)."""
    run_["machine_info"]["nnparity"]["contention"] = {
        "contended": bool(reasons), "reasons": reasons, "groups_timed": 12, "groups_contended": groups or []}
    return run_
