"""Paired statistics of a comparison group's interleaved blocks, from scipy.stats (no framework here).

A comparison group times every implementation once per block, in a shuffled order (bench/blocks.py), and
its blocks are spread over the run in `epochs` (bench/groups.py). Block b gives implementation i a per-call
time t_i[b]; whatever moves the whole machine moves every t_i[b] of one block together, so the per-block
log-ratio log t_i[b] - log t_ref[b] cancels it (paired, or "duet", benchmarking). What pairing cannot
cancel is a drift of the ratio itself: on the project's VM ratios between implementations move by 2-5%
over a minute. So the unit of the interval is the epoch when there are several (the mean log-ratio of each
epoch's blocks; Kalibera & Jones: repeat at the level where the variance arises), the block otherwise:

    ratio = exp(mean of the units)      the geometric-mean ratio to the group's reference
    ci95  = exp(t-interval)             scipy.stats.t.interval(0.95, n-1, mean, scipy.stats.sem(units))

With balanced epochs the mean of the epoch means is the mean over all blocks. The reference is the group's
fastest implementation, the smallest mean log time, so every other row's ratio is >= 1. Two
implementations are *indistinguishable* when the interval of their ratio includes 1 or lies within +-3%
(PRACTICAL). Between runs, a row's log-ratios agree when |mean1 - mean2| <= z(0.975) * sqrt(se1^2 + se2^2);
its raw per-block times differ when scipy.stats.mannwhitneyu gives p < 0.002 and the medians are more than
10% apart (asv's rule).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
PRACTICAL = 0.03
"""An interval inside [1 - 3%, 1 + 3%] reads indistinguishable even when it excludes 1: too small to matter."""
MWU_ALPHA = 0.002
MWU_FACTOR = 1.10
"""asv's defaults: a change needs Mann-Whitney U at p < 0.002 and a ratio of medians beyond 1.1."""

Epochs = Sequence[int] | None
"""The epoch of every block (same length as the log-ratios), or None: every block its own unit."""


def units(log_ratios: Sequence[float], epochs: Epochs = None) -> np.ndarray:
    """The interval's units: each epoch's mean log-ratio where there are two epochs or more, else the blocks."""
    lr = np.asarray(log_ratios, dtype=np.float64)
    if epochs is None:
        return lr
    ep = np.asarray(epochs)
    if ep.shape != lr.shape:
        raise ValueError(f"one epoch per block: {lr.size} log-ratios but {ep.size} epochs")
    keys = np.unique(ep)
    return lr if keys.size < 2 else np.array([lr[ep == k].mean() for k in keys])


@dataclass(frozen=True)
class Ratio:
    """One row's ratio to a reference from paired per-block log-ratios (and their epochs)."""

    ratio: float
    ci95: tuple[float, float] | None  # None with fewer than 2 units
    log_ratios: tuple[float, ...]
    epochs: tuple[int, ...] | None = None

    @property
    def blocks(self) -> int:
        return len(self.log_ratios)

    @property
    def se(self) -> float:
        """Standard error of the mean log-ratio over the units (scipy.stats.sem); nan with fewer than 2."""
        u = units(self.log_ratios, self.epochs)
        return float(stats.sem(u)) if u.size >= 2 else math.nan

    @property
    def half_width(self) -> float:
        """The interval's relative half-width in ratio terms: exp(t * se) - 1 (the interval is symmetric in log)."""
        if self.ci95 is None:
            return math.nan
        return math.sqrt(self.ci95[1] / self.ci95[0]) - 1.0

    @property
    def indistinguishable(self) -> bool:
        return indistinguishable(self.ci95)


def log_ratio_interval(log_ratios: Sequence[float], epochs: Epochs = None, confidence: float = CONFIDENCE) -> Ratio:
    """Geometric-mean ratio and its t-interval from paired log-ratios (units: epochs, else blocks)."""
    lr = np.asarray(log_ratios, dtype=np.float64)
    if lr.ndim != 1 or lr.size == 0 or not np.all(np.isfinite(lr)):
        raise ValueError(f"log-ratios must be a non-empty 1-D array of finite numbers, got shape {lr.shape}: {lr[:5]}")
    u = units(lr, epochs)
    mean = float(u.mean())
    ep = None if epochs is None else tuple(int(e) for e in epochs)
    if u.size < 2:
        return Ratio(math.exp(mean), None, tuple(lr.tolist()), ep)
    se = float(stats.sem(u))
    if se == 0.0:  # every unit gave the same ratio: the interval is that ratio
        lo = hi = mean
    else:
        lo, hi = stats.t.interval(confidence, u.size - 1, loc=mean, scale=se)
    return Ratio(math.exp(mean), (math.exp(lo), math.exp(hi)), tuple(lr.tolist()), ep)


def indistinguishable(ci95: Sequence[float] | None) -> bool:
    """True when the interval includes 1 or lies within +-PRACTICAL; an unknown interval (None) is too."""
    if ci95 is None:
        return True
    lo, hi = ci95
    return lo <= 1.0 <= hi or (lo >= 1.0 - PRACTICAL and hi <= 1.0 + PRACTICAL)


def _check_times(times: Mapping[str, Sequence[float]]) -> int:
    if not times:
        raise ValueError("a comparison group needs at least one implementation's block times")
    lengths = {k: len(v) for k, v in times.items()}
    if len(set(lengths.values())) != 1 or 0 in lengths.values():
        raise ValueError(f"every implementation needs the same non-zero number of blocks; got {lengths}")
    bad = [k for k, v in times.items() if not all(t > 0 and math.isfinite(t) for t in v)]
    if bad:
        raise ValueError(f"block times must be positive and finite; not so for {', '.join(bad)}")
    return next(iter(lengths.values()))


def reference(times: Mapping[str, Sequence[float]], epochs: Epochs = None) -> str:
    """The fastest implementation: the smallest mean log per-call time over the units."""
    _check_times(times)
    return min(times, key=lambda k: (float(units(np.log(times[k]), epochs).mean()), k))


def group(times: Mapping[str, Sequence[float]], epochs: Epochs = None) -> tuple[str, dict[str, Ratio]]:
    """(reference id, {id: Ratio to the reference}) for one group's per-block per-call times. The
    reference's own Ratio is exactly 1.0 with interval [1.0, 1.0]."""
    _check_times(times)
    ref = reference(times, epochs)
    log_ref = np.log(np.asarray(times[ref], dtype=np.float64))
    lrs = {k: np.log(np.asarray(t, dtype=np.float64)) - log_ref for k, t in times.items()}
    return ref, _relative(lrs, ref, epochs)


def _relative(lrs: Mapping[str, np.ndarray], ref: str, epochs: Epochs) -> dict[str, Ratio]:
    out = {}
    for k, lr in lrs.items():
        if k == ref:
            n = len(lr)
            ep = None if epochs is None else tuple(int(e) for e in epochs)
            one = units(np.zeros(n), epochs).size >= 2
            out[k] = Ratio(1.0, (1.0, 1.0) if one else None, tuple([0.0] * n), ep)
        else:
            out[k] = log_ratio_interval(lr, epochs)
    return out


def between(a: Sequence[float], b: Sequence[float], epochs: Epochs = None) -> Ratio:
    """Ratio of A to B in one group from each one's log-ratios to the same reference (same blocks):
    log(A/B) per block = lr_A - lr_B."""
    if len(a) != len(b):
        raise ValueError(f"log-ratios of one group have one entry per block; got {len(a)} and {len(b)}")
    return log_ratio_interval(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64), epochs)


def relation(a: Sequence[float], b: Sequence[float], epochs: Epochs = None) -> int:
    """-1 when A is distinguishably faster than B, +1 when slower, 0 when indistinguishable."""
    r = between(a, b, epochs)
    if r.indistinguishable:
        return 0
    return -1 if r.ratio < 1.0 else 1


# --------------------------------------------------------------------------- a group's rows together


def rebase(log_ratios: Mapping[str, Sequence[float]], ref: str, epochs: Epochs = None) -> dict[str, Ratio]:
    """Every row's Ratio to `ref` instead of the group's own reference (the blocks are shared, so the
    per-block log-ratio to ref is lr_i - lr_ref): how two runs are compared on one basis."""
    if ref not in log_ratios:
        raise KeyError(f"{ref!r} is not in the group ({', '.join(log_ratios)})")
    base = np.asarray(log_ratios[ref], dtype=np.float64)
    return _relative({k: np.asarray(lr, dtype=np.float64) - base for k, lr in log_ratios.items()}, ref, epochs)


def relations(log_ratios: Mapping[str, Sequence[float]], epochs: Epochs = None) -> dict[tuple[str, str], int]:
    """relation(A, B) for every pair with A < B by name: -1 A faster, +1 B faster, 0 indistinguishable."""
    names = sorted(log_ratios)
    return {(a, b): relation(log_ratios[a], log_ratios[b], epochs) for i, a in enumerate(names) for b in names[i + 1:]}


def tie_classes(log_ratios: Mapping[str, Sequence[float]], epochs: Epochs = None) -> list[list[str]]:
    """The group's order with ties: rows sorted by ratio; a row joins the current class when it is
    indistinguishable from that class's fastest member, else it starts the next class."""
    names = sorted(log_ratios, key=lambda k: (float(units(log_ratios[k], epochs).mean()), k))
    classes: list[list[str]] = []
    for k in names:
        if classes and relation(log_ratios[k], log_ratios[classes[-1][0]], epochs) == 0:
            classes[-1].append(k)
        else:
            classes.append([k])
    return classes


# --------------------------------------------------------------------------- run to run


def z_critical(confidence: float = CONFIDENCE) -> float:
    return float(stats.norm.ppf(0.5 + confidence / 2))


def agree(r1: Ratio, r2: Ratio, confidence: float = CONFIDENCE) -> bool:
    """Two runs' log-ratios of one row agree when |mean1 - mean2| <= z * sqrt(se1^2 + se2^2). With no
    spread at all (a reference in both runs) they agree only when equal."""
    d = abs(math.log(r1.ratio) - math.log(r2.ratio))
    se1, se2 = (0.0 if math.isnan(s) else s for s in (r1.se, r2.se))
    return d <= z_critical(confidence) * math.sqrt(se1**2 + se2**2) + 1e-12


@dataclass(frozen=True)
class Shift:
    """One row's raw round times in two runs: Mann-Whitney U and the ratio of medians."""

    p: float
    ratio: float  # median new / median old
    changed: bool  # p < MWU_ALPHA and the ratio beyond MWU_FACTOR either way


def shift(old: Sequence[float], new: Sequence[float]) -> Shift:
    if len(old) < 1 or len(new) < 1:
        raise ValueError(f"Mann-Whitney U needs round times from both runs; got {len(old)} and {len(new)}")
    p = float(stats.mannwhitneyu(old, new, alternative="two-sided").pvalue)
    ratio = float(np.median(new) / np.median(old))
    changed = p < MWU_ALPHA and (ratio > MWU_FACTOR or ratio < 1.0 / MWU_FACTOR)
    return Shift(p, ratio, changed)
