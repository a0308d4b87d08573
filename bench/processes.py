"""Timing in k freshly started worker processes, one after another (issue 19; bench/costmodel.py picks k).

A ratio measured inside one process moves by 2-3% in the next (issue 10: the seed CNN's NumPy ratio read
2.827, 2.704, 2.758, 2.730 in four processes), so the run's unit of replication is the process, as
pyperf's workers and Kalibera & Jones' top level. The parent pytest process prepares nothing: when the first
row's test runs, `Workers.run` starts `python -m bench.worker` (subprocess: exec, never fork; JAX deadlocks
under fork) k times in turn, each timing every selected group with its share of the profile's blocks, and
merges their outcomes: one pytest-benchmark entry per row whose stats are every process's blocks, and whose
extra_info["paired"] adds

    processes (the worker of every block), per_process ({process, mean, se, blocks, units, loops} each),
    model (the run's fitted bench.paired.Model), and ratio / ci95 / half_width from the two-level estimate.

What varies per worker, on purpose (Mytkowicz et al., ASPLOS 2009: randomise the set-up rather than freeze
one layout) and recorded in machine_info["nnparity"]["processes"]["workers"]: PYTHONHASHSEED, the size of
the environment variable NNPARITY_PAD (0-4096 bytes: moves the initial stack), a dummy allocation of 0-31 MiB
held from before any input is built (below the steady mmap threshold, so it shifts the heap), and the
block-order shuffle seed. What stays fixed: the CPU (the parent's pin, inherited and re-applied), one
thread per framework (the profile's thread policy), glibc malloc's thresholds (--bench-malloc), the rows
and their inputs (seeded from the row), and the rest of the environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from . import contention, paired
from .cases import Ceiling, Row

PAD_MAX = 4096
ALLOC_MAX_MIB = 32


class WorkerError(RuntimeError):
    """A row's call raised inside a worker process (its type, message and traceback are in the text)."""


def varied(run_seed: int, k: int) -> list[dict[str, int]]:
    """Each worker's randomised set-up, drawn from the run's seed (recorded, so a run can be replayed)."""
    g = np.random.default_rng(run_seed)
    return [{"hashseed": int(g.integers(1, 2**32 - 1)), "pad": int(g.integers(0, PAD_MAX + 1)),
             "alloc_bytes": int(g.integers(0, ALLOC_MAX_MIB)) * 2**20, "shuffle_seed": int(g.integers(0, 2**31))}
            for _ in range(k)]  # fmt: skip


class Workers:
    def __init__(self, root: Path, profile: str, devices: tuple[str, ...], timing, k: int, policy: dict[str, Any],
                 allocation: dict[str, Any], run_seed: int | None = None):  # fmt: skip
        self.root, self.profile, self.devices, self.timing, self.k = root, profile, devices, timing, k
        self.policy = policy  # threads, pin_cpu, malloc, blocks, cuda_events, cuda_wait
        self.allocation = allocation  # the cost model's numbers, for the record
        self.run_seed = int(np.random.SeedSequence().entropy % 2**63) if run_seed is None else run_seed
        self.records: list[dict[str, Any]] = []

    def facts(self) -> dict[str, Any]:
        """machine_info["nnparity"]["processes"]."""
        return {"k": self.k, "run_seed": self.run_seed, "worker_timing": asdict(self.timing), "cost_model": self.allocation,
                "varied": ["PYTHONHASHSEED", f"len(NNPARITY_PAD) 0-{PAD_MAX} bytes",
                           f"a dummy allocation of 0-{ALLOC_MAX_MIB - 1} MiB before inputs are built", "block-order shuffle seed"],
                "fixed": ["the CPU (the parent's pin)", "threads per framework (the profile's policy)",
                          "glibc malloc thresholds (--bench-malloc)", "rows and their seeded inputs", "the rest of the environment"],
                "start": "subprocess exec of `python -m bench.worker`, one after another", "workers": self.records}  # fmt: skip

    def _env(self, v: dict[str, int]) -> dict[str, str]:
        env = {k: val for k, val in os.environ.items() if not k.startswith("PYTEST_")}
        env.update(PYTHONHASHSEED=str(v["hashseed"]), NNPARITY_PAD="x" * v["pad"])
        env["PYTHONPATH"] = os.pathsep.join([str(self.root)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        return env

    def run(self, session, items: list[Row | Ceiling]) -> dict[str, Any]:
        """Time `items` in k workers, one after another; {id: groups.Outcome} merged over them."""
        from .groups import Outcome

        if session.start is None:
            session.start = contention.probe()
        results: list[tuple[int, dict]] = []
        with tempfile.TemporaryDirectory(prefix="nnparity-workers-") as tmp:
            for i, v in enumerate(varied(self.run_seed, self.k)):
                late = session._late()
                rec = {"process": i, **v, "startup_s": None, "timed_s": None, "wall_s": None, "rc": None}
                self.records.append(rec)
                if late:
                    rec["skipped"] = late
                    continue
                left = None if session.deadline is None else session.deadline - (time.monotonic() - session.t0)
                spec = {"root": str(self.root), "profile": self.profile, "devices": list(self.devices),
                        "ids": [it.id for it in items], "timing": asdict(self.timing), "deadline": left,
                        **self.policy, "alloc_bytes": v["alloc_bytes"], "shuffle_seed": v["shuffle_seed"]}  # fmt: skip
                sp, op = Path(tmp) / f"spec{i}.json", Path(tmp) / f"out{i}.json"
                sp.write_text(json.dumps(spec))
                t0 = time.monotonic()
                r = subprocess.run([sys.executable, "-m", "bench.worker", str(sp), str(op)], cwd=self.root,
                                   env=self._env(v), capture_output=True, text=True, check=False)  # fmt: skip
                rec["wall_s"], rec["rc"] = time.monotonic() - t0, r.returncode
                if r.returncode != 0 or not op.exists():
                    rec["error"] = (r.stderr or r.stdout)[-3000:]
                    continue
                res = json.loads(op.read_text())
                rec.update(timed_s=res["timed_s"], startup_s=rec["wall_s"] - res["timed_s"], pid=res["pid"],
                           pin=res["pin"], malloc=res["malloc"], seen_hashseed=res["hashseed"], seen_pad=res["pad"])  # fmt: skip
                session.groups += [dict(g, process=i) for g in res["groups"]]
                results.append((i, res))
        if not results:
            why = "; ".join(f"worker {r['process']}: {r.get('error') or r.get('skipped')}" for r in self.records)
            err = WorkerError(f"no worker process finished: {why[-2000:]}")
            return {it.id: Outcome(error=err) for it in items}
        return merge(items, results)


def _usage(uses: list[dict]) -> dict[str, Any]:
    wall = sum(u["wall_s"] for u in uses)
    others = [(u["others_cores"], u["wall_s"]) for u in uses if u.get("others_cores") is not None]
    return {"wall_s": wall, "others_cores": sum(o * w for o, w in others) / wall if others and wall > 0 else None,
            "steal": max((u.get("steal") or 0.0 for u in uses), default=None),
            "per_process": uses, "contended": any(u.get("contended") for u in uses)}  # fmt: skip


def merge(items: list[Row | Ceiling], results: list[tuple[int, dict]]) -> dict[str, Any]:
    """Every row's Outcome from the workers' (a skip or an error in any worker is the row's), the two-level
    ratios fitted over the run (bench.paired.fit over every non-reference row of every group)."""
    from .groups import Outcome

    out: dict[str, Any] = {}
    by_group: dict[str, list[str]] = {}
    for it in items:
        recs = [(i, res["outcomes"].get(it.id)) for i, res in results]
        err = next(((i, r["error"]) for i, r in recs if r and r["error"]), None)
        skip = next((r["skip"] for _, r in recs if r and r["skip"] is not None), None)
        if err:
            i, e = err
            out[it.id] = Outcome(error=WorkerError(f"in worker process {i}: {e['type']}: {e['message']}\n{e['traceback']}"))
        elif skip is not None:
            out[it.id] = Outcome(skip=skip)
        elif any(r is None or r["info"] is None for _, r in recs):
            out[it.id] = Outcome(skip="not recorded by every worker process")
        elif all(r["times"] is None for _, r in recs):
            out[it.id] = Outcome(info=recs[0][1]["info"])
        else:
            by_group.setdefault(it.group, []).append(it.id)
    groups_data = {}
    for g, ids in by_group.items():
        pr0 = [res["outcomes"][ids[0]] for _, res in results]
        times = {k: [t for _, res in results for t in res["outcomes"][k]["times"]] for k in ids}
        procs = [i for (i, res), r in zip(results, pr0) for _ in r["times"]]
        eps0 = [r["info"]["paired"]["epochs"] for r in pr0]
        if all(e is not None for e in eps0):
            offs = np.cumsum([0] + [max(e) + 1 for e in eps0])[:-1]
            epochs = [int(o + x) for o, e in zip(offs, eps0) for x in e]
        else:
            epochs = None
        ref = paired.reference(times, epochs)
        base = np.log(np.asarray(times[ref]))
        lrs = {k: np.log(np.asarray(times[k])) - base for k in ids}
        groups_data[g] = (ids, times, procs, epochs, ref, lrs)
    model = paired.fit([paired.per_process(lr, ep, pr) for ids, _, pr, ep, ref, lrs in groups_data.values()
                        for k, lr in lrs.items() if k != ref])  # fmt: skip
    for g, (ids, times, procs, epochs, ref, lrs) in groups_data.items():
        ratios = paired._relative(lrs, ref, epochs, procs, model)
        for k in ids:
            per = [res["outcomes"][k] for _, res in results]
            info = json.loads(json.dumps(per[0]["info"]))
            r = ratios[k]
            pp = [dict(d, loops=p["loops"]) for d, p in zip(r.per_process or (), per)]
            info.update(rounds=len(times[k]), loops=per[0]["loops"])
            info["paired"].update(
                reference=ref, ratio=r.ratio, ci95=list(r.ci95) if r.ci95 else None, blocks=r.blocks,
                log_ratios=list(r.log_ratios), epochs=epochs, processes=procs, per_process=pp,
                half_width=r.half_width if r.ci95 else None, se=r.se, df=r.df, model=model.as_dict(),
                interval_units="processes", times_s=times[k], machine=_usage([p["info"]["paired"]["machine"] for p in per]),
                order=f"{per[0]['info']['paired']['order']}; in each of {len(per)} worker processes, its own shuffle seed")  # fmt: skip
            out[k] = Outcome(info=info, times=times[k], loops=per[0]["loops"])
    return out
