"""Comparison groups: how interleaved, paired timing fits pytest-benchmark.

pytest keeps one test per row (ids, -k selection, skips and failures stay per implementation), and the
JSON keeps one pytest-benchmark entry per row with its own `stats`. What changes is when a row is timed:
after collection, `Session.register` sorts the selected rows into groups (`Row.group`: every
implementation and mode on one work item; a ceiling is a group of one). When a group's first row runs,
`Session.outcome` prepares and checks every member of the group, calibrates each one's loops, times them
together in shuffled blocks (bench/blocks.py) and computes each row's paired ratio to the group's fastest
(bench/paired.py). Every row's test then records its share: the per-block per-call times become its
pytest-benchmark stats (rounds = blocks, iterations = loops), and extra_info["paired"] holds

    group, reference, ratio, ci95, blocks, log_ratios, half_width, members, loops, slot_s, order,
    threads, times_s (per-call seconds per block, for Mann-Whitney U between runs), machine (what other
    processes used while the group was timed; bench/contention.py)

A row that cannot run (framework missing, mode not offered) skips with its reason, and a row whose call
raises fails with its own exception; the rest of its group is timed without it.
"""

from __future__ import annotations

import os
import time
import zlib
from contextlib import ExitStack
from dataclasses import dataclass
from statistics import median
from typing import Any

import pytest

from . import blocks, contention, harness, paired
from .cases import Ceiling, Row
from .prepare import native


@dataclass
class Outcome:
    info: dict[str, Any] | None = None
    times: list[float] | None = None  # per-call seconds, one per block
    loops: int = 1
    skip: str | None = None
    error: BaseException | None = None


def seed(group: str) -> int:
    """The group's block-order seed, stable across runs and PYTHONHASHSEED."""
    return zlib.crc32(group.encode()) % 2**31


class Session:
    """The run's groups, their outcomes until each row's test takes its own, and the machine's state."""

    def __init__(self, opts: harness.Options, deadline: float | None = None, t0: float | None = None):
        self.opts = opts
        self.deadline, self.t0 = deadline, time.monotonic() if t0 is None else t0
        self.pending: dict[str, list[Row | Ceiling]] = {}
        self.outcomes: dict[str, Outcome] = {}
        self.start: dict[str, Any] | None = None  # contention.probe() before the first timed group
        self.groups: list[dict[str, Any]] = []  # per timed group: id, members, blocks, machine usage

    def register(self, items: list[Row | Ceiling]) -> None:
        for it in items:
            self.pending.setdefault(it.group, []).append(it)

    def outcome(self, item: Row | Ceiling) -> Outcome:
        if item.id not in self.outcomes:
            members = self.pending.pop(item.group, None) or [item]
            if item not in members:
                members.append(item)
            self._run(item.group, members)
        return self.outcomes.pop(item.id)

    # ----------------------------------------------------------------------- one group

    def _run(self, group: str, items: list[Row | Ceiling]) -> None:
        if self.deadline is not None:
            elapsed = time.monotonic() - self.t0
            if elapsed > self.deadline:
                why = f"not run: --bench-deadline {self.deadline:g} s had passed ({elapsed:.0f} s into the session)"
                self.outcomes.update({it.id: Outcome(skip=why) for it in items})
                return
        if self.opts.enabled and self.start is None:
            self.start = contention.probe()
        entries: dict[str, harness.Entry] = {}
        with ExitStack() as stack:
            for it in items:
                try:
                    if isinstance(it, Row):
                        stack.enter_context(harness.context(it.framework, it.precision, it.device))
                        entries[it.id] = harness.prepare_row(it, self.opts)
                    else:
                        stack.enter_context(harness.context(it.lib, it.precision, it.device))
                        entries[it.id] = harness.prepare_ceiling(it, self.opts)
                except pytest.skip.Exception as e:
                    self.outcomes[it.id] = Outcome(skip=str(e.msg))
                except Exception as e:  # noqa: BLE001 - re-raised by the row's own test
                    self.outcomes[it.id] = Outcome(error=e)
            if not self.opts.enabled or not entries:
                self.outcomes.update({k: Outcome(info=e.info) for k, e in entries.items()})
                return
            self._time(group, entries)

    def _time(self, group: str, entries: dict[str, harness.Entry]) -> None:
        opts, members = self.opts, [e.member for e in entries.values()]
        plan, failed = blocks.calibrate(members, opts.timing, opts.blocks)
        self.outcomes.update({k: Outcome(error=err) for k, err in failed.items()})
        events = {}
        for k, e in entries.items():
            if k in plan.loops and e.device == "cuda" and opts.cuda_events and plan.estimate[k] >= harness.CUDA_EVENT_MIN_S / 2:
                timer = native("torch").EventTimer(plan.loops[k] * plan.blocks)
                call, wait = timer.wrap(e.fn), e.wait
                e.member.timed = lambda call=call, wait=wait: (call(), wait())
                events[k] = timer
        before = contention.snapshot()
        times, errors = blocks.run(members, plan, seed(group))
        use = contention.usage(before, contention.snapshot())
        use["contended"] = contention.group_contended(use)
        self.outcomes.update({k: Outcome(error=err) for k, err in errors.items()})
        self.groups.append({"group": group, "members": sorted(times), "blocks": plan.blocks, **use})
        if not times:
            return
        ref, ratios = paired.group(times)
        for k, t in times.items():
            info, r = entries[k].info, ratios[k]
            info.update(rounds=plan.blocks, warmup_calls=plan.warmup_calls[k], loops=plan.loops[k])
            info["paired"] = {
                "group": group, "reference": ref, "ratio": r.ratio, "ci95": list(r.ci95) if r.ci95 else None,
                "blocks": r.blocks, "log_ratios": list(r.log_ratios),
                "half_width": r.half_width if r.ci95 else None,
                "members": sorted(times), "loops": plan.loops[k], "slot_s": opts.timing.slot,
                "order": f"shuffled per block (numpy default_rng seed {seed(group)}), after one untimed block",
                "threads": opts.threads if opts.threads is not None else "framework defaults",
                "times_s": t, "machine": use,
            }  # fmt: skip
            if k in events:
                ev = events[k].median_s()
                info.update(cuda_event_median_s=ev, cuda_event_ratio=median(t) / ev, cuda_event_rounds=events[k].used)
            self.outcomes[k] = Outcome(info=info, times=t, loops=plan.loops[k])

    # ----------------------------------------------------------------------- the run

    def finish(self) -> dict[str, Any] | None:
        """The run's contention verdict (bench/contention.py), from the probe before the first group and
        one now; None when nothing was timed."""
        if self.start is None:
            return None
        if not hasattr(self, "_verdict"):
            end = contention.probe()
            v = contention.verdict(self.start, end, os.cpu_count() or 1)  # load is machine-wide
            v["start"], v["end"] = self.start, end
            busy = [g["group"] for g in self.groups if g["contended"]]
            v["groups_timed"], v["groups_contended"] = len(self.groups), busy
            self._verdict = v
        return self._verdict


def record(benchmark, out: Outcome) -> dict[str, Any]:
    """Replay a row's outcome in its own test: skip or raise as it did, else fill its benchmark fixture
    (extra_info, and stats from the per-block per-call times). Returns the row's extra_info."""
    if out.skip is not None:
        pytest.skip(out.skip)
    if out.error is not None:
        raise out.error
    benchmark.extra_info.update(out.info)
    # pytest-benchmark 5 has no public way to hand it samples measured elsewhere: its own Metadata/Stats (the
    # fixture's _make_stats), filled as pedantic() fills them, one update per round of `loops` calls; _mode
    # says the fixture was used (as pedantic() does), so it does not warn. tests/test_bench_paired_run.py
    # checks the JSON this gives.
    benchmark._mode = "nnparity paired blocks (bench/groups.py)"
    if out.times is not None and not benchmark.disabled:
        stats = benchmark._make_stats(out.loops)
        for t in out.times:
            stats.update(t * out.loops)
    return out.info


def run_row(benchmark, row: Row, session: Session) -> None:
    info = record(benchmark, session.outcome(row))
    harness.judge(row, info)


def run_ceiling(benchmark, c: Ceiling, session: Session) -> None:
    record(benchmark, session.outcome(c))
