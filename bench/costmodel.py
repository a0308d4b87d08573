"""How many worker processes, and how much of the profile's timing each gets (Kalibera & Jones, ISMM 2013).

A row's ratio is the mean of its k process means (bench/paired.py, Model). With per-process timed seconds T,

    Var(row) = between_var / k + within_var_s / (k T)

where between_var is the variance of a process's offset (what a fresh process changes: layout, hash seed)
and within_var_s the within-process variance of a process mean times the seconds it was timed over (block
noise averages down as 1/T: on the project's VM an epoch mean's variance was its blocks' over their count).
A process costs startup_s (interpreter, frameworks, preparing, checking and warming every member up) before
its first timed second. Kalibera & Jones' optimum per process is T* = sqrt(startup_s within_var_s /
between_var); under a wall-time budget B the suite takes the k >= 2 (two processes give a between-process
variance at all) that minimises Var with T = B / k - startup_s, and each worker runs share = T / T_profile
of the profile's blocks, over round(share x epochs) of its epochs (at least one).

    python -m bench.costmodel run1.json [run2.json ...]   # the model's inputs measured from runs, and its k
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Cost:
    startup_s: float  # per process: start-up + preparing + warm-up, before the first timed block
    timed_s: float  # the profile's timed seconds in one process (every group's blocks, all epochs)
    between_var: float  # variance of a process's offset of a row's log-ratio
    within_var_s: float  # within-process variance of a process mean x the seconds it was timed over
    budget_s: float  # wall seconds the workers may take together
    source: str

    def variance(self, k: int, t: float) -> float:
        return self.between_var / k + self.within_var_s / (k * t) if t > 0 else math.inf


COSTS = {
    # reports/runs/cpu-quick-1.json and -2.json (two quiet quick runs on the project's 2-vCPU VM, 2026-11-29,
    # one process each): 266 s start to start, 198 s of it timed blocks, so ~68 s start-up, preparing and
    # warm-up; across the two runs' 180 non-reference rows mean (d^2 - se1^2 - se2^2) / 2 = 1.2e-4 (between);
    # within, the mean block variance of the log-ratios 3.4e-3 times the 9.9 s one block of every group takes.
    # Start-up measured again with the workers themselves (2026-12-02, the first quick run with k = 2, the LSTM rows
    # in): 72.6 s and 74.1 s per worker; each worker timed 74 s where 67 s were allotted (block overheads: +10%), and
    # the parent's collection and merge took 12.7 s, so the run took 307.7 s against the 5-minute bar. The budget
    # for the workers is therefore 300 s less the parent's 13 s, less 10% for the timed overrun, less a margin for
    # the machine's noise: 255 s (k = 2, ~54 s allotted each: ~281 s a run).
    "quick": Cost(73.4, 198.0, 1.2e-4, 3.4e-3 * 9.9, 255.0,
                  "start-up: the workers of a 2026-12-02 quick run; variances: reports/runs/cpu-quick-1.json, -2.json"),
    # full and deepbench have no measured pair yet: the quick profile's variances, their own timed seconds.
    "full": Cost(90.0, 1200.0, 1.2e-4, 3.4e-2, 1500.0, "quick's variances; full's ~25 min"),
    "deepbench": Cost(40.0, 500.0, 1.2e-4, 3.4e-2, 560.0, "quick's variances; deepbench's ~10 min"),
}
MAX_PROCESSES = 20  # pyperf's default


@dataclass(frozen=True)
class Allocation:
    processes: int
    timed_s: float  # per process
    share: float  # of the profile's blocks, per process
    optimum_s: float  # Kalibera & Jones' T* per process, without the budget
    variance: float
    fits: bool  # k processes of T seconds fit the budget
    why: str


def allocate(c: Cost, processes: int | None = None) -> Allocation:
    """The k (given, or the best k >= 2 within the budget) and each worker's timed seconds and share."""
    opt = math.sqrt(c.startup_s * c.within_var_s / c.between_var) if c.between_var > 0 else math.inf
    if processes is not None:
        t = max(c.budget_s / processes - c.startup_s, 0.0)
        t = min(t, c.timed_s) if t > 0 else c.timed_s / processes
        return Allocation(processes, t, t / c.timed_s, opt, c.variance(processes, t), processes * (c.startup_s + t) <= c.budget_s,
                          f"--bench-processes {processes}")  # fmt: skip
    best = None
    for k in range(2, MAX_PROCESSES + 1):
        t = min(c.budget_s / k - c.startup_s, opt, c.timed_s)
        if t <= 0:
            break
        v = c.variance(k, t)
        if best is None or v < best[1]:
            best = (k, v, t)
    if best is None:  # not even two processes fit: two of the least time each, and say so (cut rows)
        t = c.timed_s * 0.1
        return Allocation(2, t, t / c.timed_s, opt, c.variance(2, t), False,
                          f"two processes need {2 * c.startup_s:.0f} s of start-up, over the {c.budget_s:.0f} s budget")  # fmt: skip
    k, v, t = best
    return Allocation(k, t, t / c.timed_s, opt, v, True,
                      f"min between_var/k + within_var_s/(kT) with k(startup + T) <= {c.budget_s:.0f} s")  # fmt: skip


def worker_timing(timing, share: float):
    """The profile's Timing scaled to one worker's share: its blocks (and clamps) x share, over its share of
    the epochs (at least two where the profile has two, so that every worker's own standard error still comes
    from epochs, the level where a process's drift shows; at most the profile's)."""
    import dataclasses

    epochs = max(min(2, timing.epochs), min(timing.epochs, round(timing.epochs * share)))
    return dataclasses.replace(
        timing, epochs=epochs, group_time=timing.group_time * share,
        min_blocks=max(epochs, math.ceil(timing.min_blocks * share)),
        max_blocks=max(epochs, math.ceil(timing.max_blocks * share)))  # fmt: skip


# --------------------------------------------------------------------------- measured from runs


def measure(paths: list[str]) -> dict:
    """The model's inputs from runs made with worker processes (machine_info.nnparity.processes): start-up,
    timed seconds, between- and within-process variance of the non-reference rows' process means."""
    start, timed, between, within = [], [], [], []
    for p in paths:
        data = json.loads(Path(p).read_text())
        procs = (data["machine_info"].get("nnparity") or {}).get("processes") or {}
        for w in procs.get("workers", []):
            if w.get("startup_s") is not None:
                start.append(w["startup_s"])
                timed.append(w["timed_s"])
        for b in data["benchmarks"]:
            pr = b["extra_info"].get("paired") or {}
            pp = pr.get("per_process") or []
            if b["extra_info"].get("id") == pr.get("reference") or len(pp) < 2:
                continue
            y = np.array([d["mean"] for d in pp])
            w = np.array([d["se"] ** 2 if d["se"] is not None and math.isfinite(d["se"]) else 0.0 for d in pp])
            between.append(float(y.var(ddof=1) - w.mean()))
            within.append(float(w.mean()))
    t = float(np.mean(timed)) if timed else math.nan
    return {"runs": paths, "workers": len(start), "rows": len(between),
            "startup_s": float(np.mean(start)) if start else math.nan, "timed_s_per_process": t,
            "between_var": max(0.0, float(np.mean(between))) if between else math.nan,
            "within_var_s": float(np.mean(within)) * t if within else math.nan}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.costmodel", description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="*", help="pytest-benchmark JSON of runs made with worker processes")
    p.add_argument("--profile", default="quick", choices=sorted(COSTS))
    a = p.parse_args(argv)
    c = COSTS[a.profile]
    print(f"committed model ({a.profile}): {json.dumps(asdict(c))}")
    al = allocate(c)
    print(f"  -> k = {al.processes}, {al.timed_s:.0f} s timed per process (share {al.share:.2f}); K&J optimum "
          f"{al.optimum_s:.0f} s; Var {al.variance:.2e} (sd {math.sqrt(al.variance):.2%}); {al.why}")  # fmt: skip
    if a.runs:
        m = measure(a.runs)
        print(f"measured: {json.dumps(m)}")
        if all(math.isfinite(m[k]) for k in ("startup_s", "between_var", "within_var_s")) and m["between_var"] > 0:
            mc = Cost(m["startup_s"], c.timed_s, m["between_var"], m["within_var_s"], c.budget_s, "measured")
            al = allocate(mc)
            print(f"  -> k = {al.processes}, {al.timed_s:.0f} s timed per process (share {al.share:.2f}); K&J "
                  f"optimum {al.optimum_s:.0f} s; Var {al.variance:.2e} (sd {math.sqrt(al.variance):.2%})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
