"""The certificate's paired speed ranking: bench's interleaved blocks and paired statistics on every voice's
whole-model build, forward (Built.call) and forward + backward (Built.step), float32.

One comparison group per pass, its members the voices; each group's blocks are split over EPOCHS that alternate
the two groups, so the 95% interval's units are epochs (bench/paired.py). One compute thread per framework, the
process pinned to one CPU while timing (as bench's quick profile; the CLI sets the threads before any framework
starts), glibc malloc held steady (bench/machine.py). Beside the times: the machine's facts, a measured matmul
ceiling before and after, and what other processes used meanwhile (bench/contention.py).
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from bench import blocks, contention, machine, paired
from impls import frameworks
from impls.model.voices import Built

TIMING = blocks.Timing(slot=0.02, min_blocks=15, max_blocks=40, group_time=5.0, warmup=2, warmup_time=0.1, epochs=5)
"""Sized so the seed CNN's two groups take ~15 s on the project's 2-core VM: a slot of 20 ms per voice per block."""
THREADS = 1


def _ready(out: Any) -> Any:
    """Wait for asynchronously dispatched results (JAX arrays' block_until_ready), so a timed unit includes its
    work; duck-typed, no framework imported."""
    if isinstance(out, (tuple, list)):
        for o in out:
            _ready(o)
    elif isinstance(out, dict):
        for o in out.values():
            _ready(o)
    elif hasattr(out, "block_until_ready"):
        out.block_until_ready()
    return out


def members(builts: dict[str, Built], x: np.ndarray, dy: np.ndarray) -> dict[str, list[blocks.Member]]:
    """{pass: [Member per voice]}; a voice without a step is left out of forward+backward."""
    out: dict[str, list[blocks.Member]] = {"forward": [], "forward+backward": []}
    for voice, b in builts.items():
        xn = b.to_native(x)
        out["forward"].append(blocks.Member(voice, lambda b=b, xn=xn: _ready(b.call(xn))))
        if b.step is not None:
            dyn = b.native_dy(dy)  # the output's layout, not the input's
            out["forward+backward"].append(blocks.Member(voice, lambda b=b, xn=xn, dyn=dyn: _ready(b.step(xn, dyn))))
    return out


def _threads_note() -> dict[str, Any]:
    note: dict[str, Any] = {"limit": frameworks.threads()}
    if "tensorflow" in sys.modules:  # TensorFlow fixes its pools when it starts: say what it actually runs with
        tf = sys.modules["tensorflow"]
        note["tensorflow_intra_op"] = tf.config.threading.get_intra_op_parallelism_threads()
    if "torch" in sys.modules:
        note["torch"] = sys.modules["torch"].get_num_threads()
    return note


def rank(builts: dict[str, Built], x: np.ndarray, dy: np.ndarray, seed: int,
         progress: Callable[[str], None] = lambda m: None, timing: blocks.Timing = TIMING,
         flops: int | None = None) -> dict[str, Any]:  # fmt: skip
    """The ranking of every built voice, both passes: per row the median per-call time, the ratio to the group's
    fastest with its 95% interval, and its tie class."""
    if not builts:
        return {"skipped": "no voice built the model in float32"}
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    pin = machine.pin() if frameworks.threads() == THREADS else {"policy": "unpinned", "why": "threads not limited"}
    malloc = machine.steady_malloc()
    try:
        start = contention.probe()
        groups = members(builts, x, dy)
        plans: dict[str, blocks.Plan] = {}
        errors: dict[str, dict[str, str]] = {}
        for name, ms in groups.items():
            progress(f"calibrating {name} ({len(ms)} voices)")
            plans[name], failed = blocks.calibrate(ms, timing)
            errors[name] = {k: f"{type(e).__name__}: {e}" for k, e in failed.items()}
        times: dict[str, dict[str, list[float]]] = {g: {m.id: [] for m in ms if m.id in plans[g].loops} for g, ms in groups.items()}
        epochs: dict[str, list[int]] = {g: [] for g in groups}
        usage: dict[str, list[dict]] = {g: [] for g in groups}
        for e in range(timing.epochs):
            gc.collect()
            progress(f"timing epoch {e + 1} of {timing.epochs}")
            order = list(groups)[:: 1 if e % 2 == 0 else -1]
            for g in order:
                live = [m for m in groups[g] if m.id in times[g]]
                before = contention.snapshot()
                got, failed = blocks.run(live, plans[g], seed + e)
                usage[g].append(contention.usage(before, contention.snapshot()))
                for k, err in failed.items():
                    errors[g][k] = f"{type(err).__name__}: {err}"
                    times[g].pop(k, None)
                for k, v in got.items():
                    if k in times[g]:
                        times[g][k] += v
                epochs[g] += [e] * plans[g].blocks
        end = contention.probe()
    finally:
        if affinity is not None:
            os.sched_setaffinity(0, affinity)
    out: dict[str, Any] = {"passes": {}, "dtype": "float32", "batch": int(x.shape[0]), "seed": seed,
                           "timing": {f: getattr(timing, f) for f in timing.__dataclass_fields__},
                           "threads": _threads_note(), "pin": pin, "malloc": malloc,
                           "machine": _facts(), "contention": contention.verdict(start, end, os.cpu_count() or 1)}  # fmt: skip
    out["contention"].update(matmul_gflops_start=start["matmul_gflops"], matmul_gflops_end=end["matmul_gflops"])
    for g in groups:
        out["passes"][g] = _pass(g, times[g], epochs[g], plans[g], builts, errors[g], usage[g],
                                 flops if g == "forward" else None, start["matmul_gflops"])  # fmt: skip
    return out


def _pass(name: str, times: dict[str, list[float]], epochs: list[int], plan: blocks.Plan, builts: dict[str, Built],
          errors: dict[str, str], usage: list[dict], flops: int | None, gflops: float) -> dict[str, Any]:  # fmt: skip
    wall = sum(u["wall_s"] for u in usage)
    others = [u["others_cores"] for u in usage if u["others_cores"] is not None]
    use = {"wall_s": wall, "others_cores": (sum(others) / len(others)) if others else None,
           "steal": max((u["steal"] or 0.0 for u in usage), default=None)}  # fmt: skip
    use["contended"] = contention.group_contended(use)
    left_out = {v: "no step (forward + backward) in its build" for v, b in builts.items() if name != "forward" and b.step is None}
    left_out.update(errors)
    if not times:
        return {"rows": [], "left_out": left_out, "machine": use}
    ref, ratios = paired.group(times, epochs)
    classes = paired.tie_classes({k: r.log_ratios for k, r in ratios.items()}, epochs)
    tie = {k: i + 1 for i, cls in enumerate(classes) for k in cls}
    rows = []
    for k in sorted(times, key=lambda k: ratios[k].ratio):
        med = float(np.median(times[k]))
        row = {"voice": k, "mode": builts[k].mode, "label": f"{k} ({builts[k].mode})", "median_s": med,
               "ratio": ratios[k].ratio, "ci95": list(ratios[k].ci95) if ratios[k].ci95 else None,
               "rank": tie[k], "blocks": len(times[k]), "loops": plan.loops[k]}  # fmt: skip
        if flops:
            row["gflops"] = flops / med / 1e9
            row["of_ceiling"] = row["gflops"] / gflops if gflops else None
        rows.append(row)
    return {"reference": ref, "rows": rows, "tie_classes": classes, "interval_units": "epochs",
            "epochs": len(set(epochs)), "left_out": left_out, "machine": use}  # fmt: skip


def _facts() -> dict[str, Any]:
    return {"cpu_model": machine.cpu_model(), "cores": machine.cores(), "threads": os.cpu_count(),
            "blas": [{k: lib.get(k) for k in ("internal_api", "version", "num_threads")}
                     for lib in (machine.blas().get("loaded") or [])]}  # fmt: skip


__all__ = ["THREADS", "TIMING", "members", "rank"]
