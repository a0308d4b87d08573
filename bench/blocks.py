"""Interleaved block timing of one comparison group (no framework here; bench/groups.py feeds it).

    plan, errors = calibrate(members, timing)  # warm-up calls, loops per slot, number of blocks
    times, errors = run(members, plan, seed)   # {id: [per-call seconds in block 1, ..., block k]}

Each member is one implementation's timed unit (the call plus its synchronize). Calibration, once per
member: warm-up calls (at least `warmup` of them and `warmup_time` seconds), whose median sets the loop
count so that a slot of `loops` calls lasts about `slot` seconds (one call where a call is longer).
Then k blocks: every member runs its slot once per block, in an order shuffled from block to block
(numpy's seeded generator, so a run can be replayed), and its per-call time in that block is the slot's
wall time over its loops. k = group_time / (one block's estimated time), clamped to [min_blocks,
max_blocks] (a group of one: min_blocks), split evenly over `epochs` calls of `run` that bench/groups.py
spreads over the run. Each `run` starts with one untimed call of every member, so the first timed slot
does not pay for the caches another group left. Python's garbage collector is off during the blocks (as
timeit does), so a collection never lands in one member's slot; the caller collects before (bench/groups.py:
once per epoch, since one collection costs ~0.25 s once TensorFlow and torch are loaded).
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import median

import numpy as np


@dataclass(frozen=True)
class Timing:
    slot: float  # target seconds of one member's slot in a block
    min_blocks: int
    max_blocks: int
    group_time: float  # seconds of timed blocks a group aims at; k = group_time / block, clamped
    warmup: int  # warm-up calls per member, at least
    warmup_time: float  # and at least this many seconds of them
    epochs: int = 1  # the blocks are spread over the run in this many epochs (bench/groups.py)

    def __post_init__(self):
        if not (self.slot > 0 and self.group_time >= 0 and self.warmup_time >= 0):
            raise ValueError(f"slot must be > 0, group_time and warmup_time >= 0: {self}")
        if not 1 <= self.min_blocks <= self.max_blocks or self.warmup < 0 or self.epochs < 1:
            raise ValueError(f"need 1 <= min_blocks <= max_blocks, warmup >= 0 and epochs >= 1: {self}")


@dataclass
class Member:
    id: str
    call: Callable[[], object]  # one timed unit: the call and its synchronize
    timed: Callable[[], object] | None = None  # what the blocks call (default `call`); e.g. wrapped in CUDA events

    def unit(self) -> Callable[[], object]:
        return self.timed or self.call


@dataclass
class Plan:
    loops: dict[str, int]
    estimate: dict[str, float]  # seconds per call, median of the warm-up calls
    warmup_calls: dict[str, int]
    blocks: int  # per epoch
    block_s: float = field(default=0.0)  # estimated seconds of one block
    epochs: int = 1

    @property
    def total(self) -> int:
        return self.blocks * self.epochs


def _warm(call: Callable[[], object], n: int, seconds: float) -> list[float]:
    out: list[float] = []
    start = time.perf_counter()
    while len(out) < n or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        call()
        out.append(time.perf_counter() - t0)
    return out


def calibrate(members: list[Member], timing: Timing, blocks: int | None = None) -> tuple[Plan, dict[str, Exception]]:
    """Warm every member up, set its loops, and the group's blocks (`blocks` fixes how many in all), split
    over the timing's epochs (plan.blocks is per epoch, rounded up). A member whose call raises is left out
    of the plan, with its exception."""
    loops, est, warm, errors = {}, {}, {}, {}
    for m in members:
        try:
            w = _warm(m.call, max(1, timing.warmup), timing.warmup_time)
        except Exception as e:  # noqa: BLE001 - the member's own test re-raises it
            errors[m.id] = e
            continue
        est[m.id], warm[m.id] = median(w), len(w)
        loops[m.id] = max(1, round(timing.slot / max(est[m.id], 1e-9)))
    block_s = sum(loops[k] * est[k] for k in loops)
    if blocks is None:  # in all; a group of one has nothing to pair and gets the fewest
        want = math.ceil(timing.group_time / block_s) if block_s > 0 and len(members) > 1 else timing.min_blocks
        blocks = min(timing.max_blocks, max(timing.min_blocks, want))
    if blocks < 1:
        raise ValueError(f"blocks must be >= 1, got {blocks}")
    blocks = math.ceil(blocks / timing.epochs)  # per epoch
    return Plan(loops, est, warm, blocks, block_s, timing.epochs), errors


def orders(n: int, blocks: int, seed: int) -> list[list[int]]:
    """The member order of every block (block 0 is the untimed burn-in): a fresh permutation each."""
    g = np.random.default_rng(seed)
    return [g.permutation(n).tolist() for _ in range(blocks + 1)]


def run(members: list[Member], plan: Plan, seed: int) -> tuple[dict[str, list[float]], dict[str, Exception]]:
    """One epoch: per-call seconds of every member in every timed block (plan.blocks of them), and the
    members whose call raised (left out of the later blocks and of the times, with their exception)."""
    times: dict[str, list[float]] = {m.id: [] for m in members}
    errors: dict[str, Exception] = {}
    was_enabled = gc.isenabled()
    gc.disable()  # the caller collects beforehand: a full collection costs ~0.25 s with TF and torch loaded
    try:
        for b, order in enumerate(orders(len(members), plan.blocks, seed)):
            for i in order:
                m = members[i]
                if m.id in errors or m.id not in plan.loops:
                    continue
                try:
                    if b == 0:  # burn-in: one plain call each, untimed
                        m.call()
                        continue
                    unit, n = m.unit(), plan.loops[m.id]
                    t0 = time.perf_counter()
                    for _ in range(n):
                        unit()
                    times[m.id].append((time.perf_counter() - t0) / n)
                except Exception as e:  # noqa: BLE001 - the member's own test re-raises it
                    errors[m.id] = e
    finally:
        if was_enabled:
            gc.enable()
    return {k: v for k, v in times.items() if k not in errors and k in plan.loops}, errors
