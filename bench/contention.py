"""Was the machine busy while we timed? Load, CPU steal and other processes' CPU use, read from /proc, and
a matmul ceiling probe; framework-free (NumPy only).

A run records a snapshot when its first group starts and another at its end (machine_info["nnparity"]
["contention"]); every comparison group records what other processes used while it was timed
(extra_info["paired"]["machine"]). A run is *contended* when any of these holds:

  - the matmul ceiling at the end is more than 15% below the one at the start (CEILING_DROP);
  - the 1-minute load average at the start, before any timing, exceeds the machine's CPUs;
  - other processes used more than OTHERS_CORES cores on average over the run: /proc/stat's busy time
    minus this process's own CPU time (getrusage, every thread) over the wall time;
  - the hypervisor stole more than STEAL of the CPU time (/proc/stat's steal column).

Why the last two: a burner that runs through the whole run lowers both ceilings alike (no drop), and
on 2 cores the load average of one burner beside a one-thread run is about 2.0 (not above the cores);
the CPU time other processes took is what reveals it.
"""

from __future__ import annotations

import os
import resource
import time
from typing import Any

import numpy as np

CEILING_DROP = 0.15
OTHERS_CORES = 0.25
STEAL = 0.10
PROBE_N = 1024
PROBE_REPEATS = 15
_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def cpus() -> int:
    """Logical CPUs this process may run on (the probe's threads; a load average is machine-wide and is
    measured against os.cpu_count())."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def proc_stat(path: str = "/proc/stat") -> dict[str, float] | None:
    """The aggregate `cpu` line of /proc/stat in seconds, or None where there is none (not Linux)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("cpu "):
                    ticks = [int(v) for v in line.split()[1:9]]
                    hz = os.sysconf("SC_CLK_TCK")
                    return {k: v / hz for k, v in zip(_FIELDS, ticks + [0] * (8 - len(ticks)))}
    except (OSError, ValueError):
        pass
    return None


def own_cpu_s() -> float:
    """CPU seconds this process has used, every thread (BLAS, OpenMP, framework pools) included, and its children
    that have finished (bench's worker processes): they are the run's own work, not another process's."""
    r, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime


def snapshot() -> dict[str, Any]:
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    return {"wall": time.monotonic(), "loadavg": load, "proc_stat": proc_stat(), "own_cpu_s": own_cpu_s()}


def usage(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float | None]:
    """Between two snapshots: seconds of wall time, cores used by other processes, and the steal share."""
    wall = b["wall"] - a["wall"]
    out: dict[str, float | None] = {"wall_s": wall, "others_cores": None, "steal": None}
    pa, pb = a.get("proc_stat"), b.get("proc_stat")
    if not pa or not pb or wall <= 0:
        return out
    d = {k: pb[k] - pa[k] for k in _FIELDS}
    busy = d["user"] + d["nice"] + d["system"] + d["irq"] + d["softirq"]
    mine = b["own_cpu_s"] - a["own_cpu_s"]
    total = sum(d.values())
    out["others_cores"] = max(0.0, busy - mine) / wall
    out["steal"] = d["steal"] / total if total > 0 else 0.0
    return out


def matmul_gflops(threads: int | None = None, n: int = PROBE_N, repeats: int = PROBE_REPEATS) -> float:
    """A NumPy float32 n^3 matmul's median rate over `repeats` calls, in GFLOP/s, on `threads` BLAS threads
    (default: every core this process may use, so a busy neighbour shows)."""
    import threadpoolctl

    threads = threads or cpus()
    g = np.random.default_rng(0)
    a, b = g.random((n, n), dtype=np.float32), g.random((n, n), dtype=np.float32)
    out = np.empty((n, n), dtype=np.float32)
    with threadpoolctl.threadpool_limits(threads):
        np.matmul(a, b, out=out)  # warm
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            np.matmul(a, b, out=out)
            times.append(time.perf_counter() - t0)
    return 2.0 * n**3 / float(np.median(times)) / 1e9


def probe() -> dict[str, Any]:
    """A snapshot with the matmul ceiling (measured first, so the snapshot's clock starts after it)."""
    gflops = matmul_gflops()
    return {**snapshot(), "matmul_gflops": gflops}


def verdict(start: dict[str, Any], end: dict[str, Any], cores: int) -> dict[str, Any]:
    """{"contended": bool, "reasons": [...], and the figures}: the rules in this module's docstring."""
    use = usage(start, end)
    reasons = []
    c0, c1 = start.get("matmul_gflops"), end.get("matmul_gflops")
    drop = (1.0 - c1 / c0) if c0 and c1 else None
    if drop is not None and drop > CEILING_DROP:
        reasons.append(f"matmul ceiling fell {drop:.0%} ({c0:.0f} -> {c1:.0f} GFLOP/s; bar {CEILING_DROP:.0%})")
    load = (start.get("loadavg") or [None])[0]
    if load is not None and load > cores:
        reasons.append(f"load average {load:.2f} at the start exceeds the {cores} cores")
    if use["others_cores"] is not None and use["others_cores"] > OTHERS_CORES:
        reasons.append(f"other processes used {use['others_cores']:.2f} cores on average (bar {OTHERS_CORES})")
    if use["steal"] is not None and use["steal"] > STEAL:
        reasons.append(f"the hypervisor stole {use['steal']:.0%} of the CPU time (bar {STEAL:.0%})")
    return {"contended": bool(reasons), "reasons": reasons, "cores": cores, "ceiling_drop": drop,
            "load_start": load, "load_end": (end.get("loadavg") or [None])[0], **use}  # fmt: skip


def group_contended(use: dict[str, float | None]) -> bool:
    """One group's own window: other processes above OTHERS_CORES, or steal above STEAL."""
    return (use.get("others_cores") or 0.0) > OTHERS_CORES or (use.get("steal") or 0.0) > STEAL
