"""Comparison groups: how interleaved, paired timing fits pytest-benchmark.

pytest keeps one test per row (ids, -k selection, skips and failures stay per implementation), and the
JSON keeps one pytest-benchmark entry per row with its own `stats`. What changes is when a row is timed:
after collection, `Session.register` sorts the selected rows into groups (`Row.group`: every
implementation and mode on one work item; a ceiling is a group of one). When the first row runs,
`Session.outcome` prepares and checks every member of every group, calibrates each one's loops, and times
each group's members together in shuffled blocks (bench/blocks.py), its blocks split into epochs that
visit every group in turn (a shuffled order per epoch), so each group's blocks are spread over the whole
run: a ratio that drifts over minutes then shows in the interval, whose units are the epochs
(bench/paired.py). With one epoch (deepbench, whose inputs are too large to hold every group at once),
each group is prepared and timed when its first row runs. Every row's test then records its share: the
per-block per-call times become its pytest-benchmark stats (rounds = blocks, iterations = loops), and
extra_info["paired"] holds

    group, reference, ratio, ci95, blocks, log_ratios, epochs (the epoch of every block), half_width,
    interval_units, members, loops, slot_s, order, threads, times_s (per-call seconds per block, for
    Mann-Whitney U between runs), machine (what other processes used while the group was timed;
    bench/contention.py)

A row that cannot run (framework missing, mode not offered) skips with its reason, and a row whose call
raises fails with its own exception; the rest of its group is timed without it.
"""

from __future__ import annotations

import gc
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


@dataclass
class Timed:
    """One group between its preparation and its statistics: the schedule's working state."""

    items: list[Row | Ceiling]
    entries: dict[str, harness.Entry]
    plan: blocks.Plan
    events: dict[str, Any]
    times: dict[str, list[float]]
    epochs: list[int]  # the epoch of every block timed so far
    usage: list[dict[str, Any]]  # per epoch: what other processes used meanwhile


class Session:
    """The run's groups, their outcomes until each row's test takes its own, and the machine's state."""

    def __init__(self, opts: harness.Options, deadline: float | None = None, t0: float | None = None,
                 shuffle: int = 0, workers: Any = None):  # fmt: skip
        self.opts = opts
        self.shuffle = shuffle  # added to every block-order seed: a worker process's own (bench/processes.py)
        self.workers = workers  # bench.processes.Workers: time in fresh worker processes instead of here
        self.timed_s = 0.0  # seconds inside the epochs' blocks, this process
        self.deadline, self.t0 = deadline, time.monotonic() if t0 is None else t0
        self.pending: dict[str, list[Row | Ceiling]] = {}
        self.outcomes: dict[str, Outcome] = {}
        self.start: dict[str, Any] | None = None  # contention.probe() before the first timed group
        self.groups: list[dict[str, Any]] = []  # per timed group: id, members, blocks, machine usage

    def register(self, items: list[Row | Ceiling]) -> None:
        for it in items:
            self.pending.setdefault(it.group, []).append(it)

    def outcome(self, item: Row | Ceiling) -> Outcome:
        """The row's outcome, timing what it needs first: with one epoch its own group (groups one after
        another, as the tests reach them); with several, every registered group, the epochs spread over
        them all."""
        if item.id not in self.outcomes and self.workers is not None and self.opts.enabled:
            todo, self.pending = self.pending, {}
            items = [it for its in todo.values() for it in its]
            self.outcomes.update(self.workers.run(self, items if item in items else items + [item]))
        if item.id not in self.outcomes:
            if self.opts.enabled and self.opts.timing.epochs > 1 and item.group in self.pending:
                todo, self.pending = self.pending, {}
            else:
                todo = {item.group: self.pending.pop(item.group, None) or [item]}
            if item not in todo[item.group]:
                todo[item.group].append(item)
            self._schedule(todo)
        return self.outcomes.pop(item.id)

    def _late(self) -> str | None:
        if self.deadline is None:
            return None
        elapsed = time.monotonic() - self.t0
        if elapsed <= self.deadline:
            return None
        return f"not run: --bench-deadline {self.deadline:g} s had passed ({elapsed:.0f} s into the session)"

    @staticmethod
    def _contexts(stack: ExitStack, items: list[Row | Ceiling]) -> None:
        for it in items:  # the precision switches of every member (TF32 on or off on cuda)
            if isinstance(it, Row):
                stack.enter_context(harness.context(it.framework, it.precision, it.device))
            else:
                stack.enter_context(harness.context(it.lib, it.precision, it.device))

    # ----------------------------------------------------------------------- the schedule

    def _schedule(self, todo: dict[str, list[Row | Ceiling]]) -> None:
        timed: dict[str, Timed] = {}
        for group, items in todo.items():
            late = self._late()
            if late:
                self.outcomes.update({it.id: Outcome(skip=late) for it in items})
                continue
            if self.opts.enabled and self.start is None:
                self.start = contention.probe()
            t = self._prepare(group, items)
            if t is not None:
                timed[group] = t
        done = 0
        for e in range(self.opts.timing.epochs if timed else 0):
            gc.collect()  # once per epoch, not per group: ~0.25 s each with TensorFlow and torch loaded
            order = [list(timed)[i] for i in blocks.orders(len(timed), 0, seed(f"epoch {e}") + self.shuffle)[0]]
            for group in order:
                if self._late():
                    break
                self._epoch(group, timed[group], e)
            else:
                done += 1
                continue
            break
        for group, t in timed.items():
            self._finish(group, t, done)

    def _prepare(self, group: str, items: list[Row | Ceiling]) -> Timed | None:
        """Prepare and check every member, then warm them up and plan the blocks; None when nothing is
        left to time (every member skipped or failed, or timing is off: their outcomes are set)."""
        entries: dict[str, harness.Entry] = {}
        with ExitStack() as stack:
            for it in items:
                try:
                    self._contexts(stack, [it])
                    prepare = harness.prepare_row if isinstance(it, Row) else harness.prepare_ceiling
                    entries[it.id] = prepare(it, self.opts)
                except pytest.skip.Exception as e:
                    self.outcomes[it.id] = Outcome(skip=str(e.msg))
                except Exception as e:  # noqa: BLE001 - re-raised by the row's own test
                    self.outcomes[it.id] = Outcome(error=e)
            if not self.opts.enabled or not entries:
                self.outcomes.update({k: Outcome(info=e.info) for k, e in entries.items()})
                return None
            plan, failed = blocks.calibrate([e.member for e in entries.values()], self.opts.timing, self.opts.blocks)
        self.outcomes.update({k: Outcome(error=err) for k, err in failed.items()})
        entries = {k: e for k, e in entries.items() if k in plan.loops}
        events = {}
        for k, e in entries.items():
            if e.device == "cuda" and self.opts.cuda_events and plan.estimate[k] >= harness.CUDA_EVENT_MIN_S / 2:
                timer = native("torch").EventTimer(plan.loops[k] * plan.total)
                call, wait = timer.wrap(e.fn), e.wait
                e.member.timed = lambda call=call, wait=wait: (call(), wait())
                events[k] = timer
        live = [it for it in items if it.id in entries]
        return Timed(live, entries, plan, events, {k: [] for k in entries}, [], [])

    def _epoch(self, group: str, t: Timed, epoch: int) -> None:
        members = [e.member for k, e in t.entries.items() if k in t.times]
        with ExitStack() as stack:
            self._contexts(stack, [it for it in t.items if it.id in t.times])
            before = contention.snapshot()
            t0 = time.monotonic()
            times, errors = blocks.run(members, t.plan, (seed(group) + epoch + self.shuffle) % 2**32)
            self.timed_s += time.monotonic() - t0
            t.usage.append(contention.usage(before, contention.snapshot()))
        for k, err in errors.items():  # its earlier epochs are of no use without the later ones
            self.outcomes[k] = Outcome(error=err)
            del t.times[k]
        for k, v in times.items():
            t.times[k] += v
        t.epochs += [epoch] * t.plan.blocks

    def _finish(self, group: str, t: Timed, epochs_done: int) -> None:
        if not t.times or not t.epochs:
            why = self._late() or "no epoch of this group was timed"
            self.outcomes.update({k: Outcome(skip=why) for k in t.entries if k not in self.outcomes})
            return
        wall = sum(u["wall_s"] for u in t.usage)
        others = [u["others_cores"] for u in t.usage if u["others_cores"] is not None]
        use = {"wall_s": wall, "others_cores": (sum(o * u["wall_s"] for o, u in zip(others, t.usage)) / wall
                                                if others and wall > 0 else None),
               "steal": max((u["steal"] or 0.0 for u in t.usage), default=None),
               "per_epoch_others_cores": others}  # fmt: skip
        use["contended"] = contention.group_contended(use)
        self.groups.append({"group": group, "members": sorted(t.times), "blocks": len(t.epochs), **use})
        epochs = t.epochs if self.opts.timing.epochs > 1 else None
        ref, ratios = paired.group(t.times, epochs)
        for k, times in t.times.items():
            info, r = t.entries[k].info, ratios[k]
            info.update(rounds=len(times), warmup_calls=t.plan.warmup_calls[k], loops=t.plan.loops[k])
            info["paired"] = {
                "group": group, "reference": ref, "ratio": r.ratio, "ci95": list(r.ci95) if r.ci95 else None,
                "blocks": r.blocks, "log_ratios": list(r.log_ratios), "epochs": epochs,
                "half_width": r.half_width if r.ci95 else None,
                "interval_units": "epochs" if epochs else "blocks", "members": sorted(t.times),
                "loops": t.plan.loops[k], "slot_s": self.opts.timing.slot,
                "order": (f"shuffled per block (numpy default_rng seeded from the group), {t.plan.blocks} blocks "
                          f"in each of {epochs_done} epochs spread over the run, each after one untimed call"),
                "threads": self.opts.threads if self.opts.threads is not None else "framework defaults",
                "times_s": times, "machine": use,
            }  # fmt: skip
            if k in t.events:
                ev = t.events[k].median_s()
                info.update(cuda_event_median_s=ev, cuda_event_ratio=median(times) / ev, cuda_event_rounds=t.events[k].used)
            self.outcomes[k] = Outcome(info=info, times=times, loops=t.plan.loops[k])

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
    # pytest-benchmark 5 has no public way to hand it samples measured elsewhere: its own Metadata/Stats (the
    # fixture's _make_stats), filled as pedantic() fills them, one update per round of `loops` calls; _mode
    # says the fixture was used (as pedantic() does), so it does not warn. tests/test_bench_paired_run.py
    # checks the JSON this gives.
    benchmark._mode = "nnparity paired blocks (bench/groups.py)"
    if out.error is not None:
        raise out.error
    benchmark.extra_info.update(out.info)
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
