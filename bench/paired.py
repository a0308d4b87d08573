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
(PRACTICAL). Between runs, a row's log-ratios agree when |mean1 - mean2| <= t(0.975, Welch df) sqrt(se1^2 + se2^2);
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
    se_: float | None = None  # the two-level model's (moderated) standard error; None: over the units
    df: float | None = None  # its degrees of freedom; None: units - 1
    per_process: tuple[dict, ...] | None = None  # {process, mean, se, blocks} per worker process

    @property
    def blocks(self) -> int:
        return len(self.log_ratios)

    @property
    def se(self) -> float:
        """Standard error of the mean log-ratio: the two-level model's where it gave one, else over the units
        (scipy.stats.sem); nan with fewer than 2 units."""
        if self.se_ is not None:
            return self.se_
        u = units(self.log_ratios, self.epochs)
        return float(stats.sem(u)) if u.size >= 2 else math.nan

    @property
    def dof(self) -> float:
        """Degrees of freedom of the standard error: the model's, else units - 1 (nan with fewer than 2)."""
        if self.df is not None:
            return self.df
        n = units(self.log_ratios, self.epochs).size
        return float(n - 1) if n >= 2 else math.nan

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


def group(times: Mapping[str, Sequence[float]], epochs: Epochs = None, processes: Epochs = None,
          model: Model | None = None) -> tuple[str, dict[str, Ratio]]:
    """(reference id, {id: Ratio to the reference}) for one group's per-block per-call times. The
    reference's own Ratio is exactly 1.0 with interval [1.0, 1.0]."""
    _check_times(times)
    ref = reference(times, epochs)
    log_ref = np.log(np.asarray(times[ref], dtype=np.float64))
    lrs = {k: np.log(np.asarray(t, dtype=np.float64)) - log_ref for k, t in times.items()}
    return ref, _relative(lrs, ref, epochs, processes, model)


def interval(lr: Sequence[float], epochs: Epochs = None, processes: Epochs = None, model: Model | None = None) -> Ratio:
    """The row's Ratio: over its processes with the run's model where it was timed in two or more worker
    processes (`estimate`), else the one-process interval over its units (`log_ratio_interval`)."""
    if processes is not None and model is not None and len(set(processes)) >= 2:
        return estimate(lr, epochs, processes, model)
    return log_ratio_interval(lr, epochs)


def _relative(lrs: Mapping[str, np.ndarray], ref: str, epochs: Epochs, processes: Epochs = None,
              model: Model | None = None) -> dict[str, Ratio]:
    out = {}
    for k, lr in lrs.items():
        if k == ref:
            n = len(lr)
            ep = None if epochs is None else tuple(int(e) for e in epochs)
            one = units(np.zeros(n), epochs).size >= 2
            pp = None
            if processes is not None and model is not None and len(set(processes)) >= 2:
                one, pp = True, tuple(dict(d, mean=0.0, se=0.0) for d in per_process(np.zeros(n), epochs, processes))
            out[k] = Ratio(1.0, (1.0, 1.0) if one else None, tuple([0.0] * n), ep, 0.0 if pp else None, None, pp)
        else:
            out[k] = interval(lr, epochs, processes, model)
    return out


def between(a: Sequence[float], b: Sequence[float], epochs: Epochs = None, processes: Epochs = None,
            model: Model | None = None) -> Ratio:
    """Ratio of A to B in one group from each one's log-ratios to the same reference (same blocks):
    log(A/B) per block = lr_A - lr_B."""
    if len(a) != len(b):
        raise ValueError(f"log-ratios of one group have one entry per block; got {len(a)} and {len(b)}")
    return interval(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64), epochs, processes, model)


def relation(a: Sequence[float], b: Sequence[float], epochs: Epochs = None, processes: Epochs = None,
             model: Model | None = None) -> int:
    """-1 when A is distinguishably faster than B, +1 when slower, 0 when indistinguishable."""
    r = between(a, b, epochs, processes, model)
    if r.indistinguishable:
        return 0
    return -1 if r.ratio < 1.0 else 1


# --------------------------------------------------------------------------- a group's rows together


def rebase(log_ratios: Mapping[str, Sequence[float]], ref: str, epochs: Epochs = None, processes: Epochs = None,
           model: Model | None = None) -> dict[str, Ratio]:
    """Every row's Ratio to `ref` instead of the group's own reference (the blocks are shared, so the
    per-block log-ratio to ref is lr_i - lr_ref): how two runs are compared on one basis."""
    if ref not in log_ratios:
        raise KeyError(f"{ref!r} is not in the group ({', '.join(log_ratios)})")
    base = np.asarray(log_ratios[ref], dtype=np.float64)
    return _relative({k: np.asarray(lr, dtype=np.float64) - base for k, lr in log_ratios.items()}, ref, epochs,
                     processes, model)


def relations(log_ratios: Mapping[str, Sequence[float]], epochs: Epochs = None, processes: Epochs = None,
              model: Model | None = None) -> dict[tuple[str, str], int]:
    """relation(A, B) for every pair with A < B by name: -1 A faster, +1 B faster, 0 indistinguishable."""
    names = sorted(log_ratios)
    return {(a, b): relation(log_ratios[a], log_ratios[b], epochs, processes, model) for i, a in enumerate(names) for b in names[i + 1:]}


def tie_classes(log_ratios: Mapping[str, Sequence[float]], epochs: Epochs = None, processes: Epochs = None,
                model: Model | None = None) -> list[list[str]]:
    """The group's order with ties: rows sorted by ratio; a row joins the current class when it is
    indistinguishable from that class's fastest member, else it starts the next class."""
    names = sorted(log_ratios, key=lambda k: (float(units(log_ratios[k], epochs).mean()), k))
    classes: list[list[str]] = []
    for k in names:
        if classes and relation(log_ratios[k], log_ratios[classes[-1][0]], epochs, processes, model) == 0:
            classes[-1].append(k)
        else:
            classes.append([k])
    return classes


# --------------------------------------------------------------------------- run to run


def z_critical(confidence: float = CONFIDENCE) -> float:
    return float(stats.norm.ppf(0.5 + confidence / 2))


def agree(r1: Ratio, r2: Ratio, confidence: float = CONFIDENCE) -> bool:
    """Two runs' log-ratios of one row agree when |mean1 - mean2| <= t * sqrt(se1^2 + se2^2), t two-sided at
    `confidence` with the Welch-Satterthwaite degrees of freedom of the two standard errors (each run's own:
    the two-level model's, or units - 1), so two runs of the same truth agree `confidence` of the time. With
    no spread at all (a reference in both runs) they agree only when equal."""
    d = abs(math.log(r1.ratio) - math.log(r2.ratio))
    return d <= combined_critical(r1, r2, confidence) + 1e-12


def combined_critical(r1: Ratio, r2: Ratio, confidence: float = CONFIDENCE) -> float:
    """t(confidence, Welch df) * sqrt(se1^2 + se2^2): the largest |log r1 - log r2| that still agrees."""
    v = [(0.0 if math.isnan(r.se) else r.se**2, r.dof) for r in (r1, r2)]
    total = v[0][0] + v[1][0]
    if total == 0.0:
        return 0.0
    den = sum(var**2 / df for var, df in v if var > 0 and df > 0 and math.isfinite(df))
    nu = total**2 / den if den > 0 else math.inf
    crit = z_critical(confidence) if not math.isfinite(nu) else float(stats.t.ppf(0.5 + confidence / 2, nu))
    return crit * math.sqrt(total)


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


# --------------------------------------------------------------------------- rows timed in several processes

PRIOR_DF = 4.0
"""d0 when the run has too few rows to fit it (MIN_FIT_ROWS): the prior counts as four processes' worth."""
PRIOR_DF_RANGE = (2.0, 1000.0)
MIN_FIT_ROWS = 8


@dataclass(frozen=True)
class Model:
    """The run's two-level variance model (bench/processes.py fits it over every non-reference row).

    Row g's log-ratio mean in process p is y_gp = mu_g + b_gp + e_gp: b_gp the process's own offset (variance
    between_var, shared by the run's rows: ASLR, hash seed, layout), e_gp the row's within-process error
    (variance w_g, its per-process standard errors squared, from its epochs: many degrees of freedom). The row's
    sample variance of its k process means, s_g^2 (k - 1 df), is moderated toward its prior between_var + w_g
    with prior_df degrees of freedom (limma's empirical Bayes, Smyth 2004): s~^2 = (d0 prior + (k-1) s^2) /
    (d0 + k - 1); se = sqrt(s~^2 / k), t with d0 + k - 1 df."""

    between_var: float
    prior_df: float
    rows: int
    how: str

    def as_dict(self) -> dict:
        return {"between_var": self.between_var, "prior_df": self.prior_df, "rows": self.rows, "how": self.how}

    @classmethod
    def from_dict(cls, d: Mapping) -> Model:
        return cls(float(d["between_var"]), float(d["prior_df"]), int(d["rows"]), str(d.get("how", "")))


def per_process(log_ratios: Sequence[float], epochs: Epochs, processes: Sequence[int]) -> list[dict]:
    """{process, mean, se, blocks, units} of every process: the mean of its units (its epochs, else blocks)
    and their standard error (nan with one unit)."""
    lr = np.asarray(log_ratios, dtype=np.float64)
    pr = np.asarray(processes)
    if pr.shape != lr.shape:
        raise ValueError(f"one process per block: {lr.size} log-ratios but {pr.size} process numbers")
    ep = None if epochs is None else np.asarray(epochs)
    out = []
    for p in np.unique(pr):
        sel = pr == p
        u = units(lr[sel], None if ep is None else ep[sel].tolist())
        se = float(stats.sem(u)) if u.size >= 2 else math.nan
        out.append({"process": int(p), "mean": float(u.mean()), "se": se, "blocks": int(sel.sum()), "units": int(u.size)})
    return out


def _moments(pp: Sequence[Mapping]) -> tuple[float, float, int]:
    """(mean of the process means, their sample variance, the mean within-process variance of a process mean)."""
    y = np.array([d["mean"] for d in pp])
    w = np.array([0.0 if not math.isfinite(d["se"]) else d["se"] ** 2 for d in pp])
    return float(y.mean()), float(y.var(ddof=1)), float(w.mean())


def fit(rows: Sequence[Sequence[Mapping]]) -> Model:
    """The run's Model from the per-process estimates of its non-reference rows (each with >= 2 processes):
    between_var = max(0, mean over rows of s_g^2 - w_g) (moments); prior_df d0 from the spread of
    z_g = log(s_g^2 / (between_var + w_g)): Var z = trigamma((k-1)/2) + trigamma(d0/2) (limma's fitFDist),
    clamped to PRIOR_DF_RANGE; PRIOR_DF with fewer than MIN_FIT_ROWS rows."""
    from scipy import optimize, special

    ms = [(_moments(pp), len(pp)) for pp in rows if len(pp) >= 2]
    if not ms:
        return Model(0.0, PRIOR_DF, 0, "no row timed in two or more processes")
    between = max(0.0, float(np.mean([s2 - w for (_, s2, w), _ in ms])))
    z, tg = [], []
    for (_, s2, w), k in ms:
        prior = between + w
        if s2 > 0 and prior > 0:
            z.append(math.log(s2 / prior))
            tg.append(float(special.polygamma(1, (k - 1) / 2)))
    lo, hi = PRIOR_DF_RANGE
    if len(z) < MIN_FIT_ROWS:
        return Model(between, PRIOR_DF, len(ms), f"moments over {len(ms)} rows; d0 = {PRIOR_DF:g} (too few rows to fit)")
    excess = float(np.var(z, ddof=1)) - float(np.mean(tg))
    trig = lambda d: float(special.polygamma(1, d / 2))
    if excess <= trig(hi):
        d0 = hi
    elif excess >= trig(lo):
        d0 = lo
    else:
        d0 = float(optimize.brentq(lambda d: trig(d) - excess, lo, hi))
    return Model(between, d0, len(ms), f"moments and limma's fitFDist over {len(ms)} rows")


def estimate(log_ratios: Sequence[float], epochs: Epochs, processes: Sequence[int], model: Model,
             confidence: float = CONFIDENCE) -> Ratio:  # fmt: skip
    """A row timed in k >= 2 processes: ratio = exp(mean of its process means), its interval a t-interval with
    the model's moderated standard error and d0 + k - 1 degrees of freedom (Model says how)."""
    lr = np.asarray(log_ratios, dtype=np.float64)
    if lr.ndim != 1 or lr.size == 0 or not np.all(np.isfinite(lr)):
        raise ValueError(f"log-ratios must be a non-empty 1-D array of finite numbers, got shape {lr.shape}: {lr[:5]}")
    pp = per_process(lr, epochs, processes)
    ep = None if epochs is None else tuple(int(e) for e in epochs)
    if len(pp) < 2:
        return log_ratio_interval(lr, epochs, confidence)
    mean, s2, w = _moments(pp)
    k, d0 = len(pp), model.prior_df
    var = (d0 * (model.between_var + w) + (k - 1) * s2) / (d0 + k - 1)
    se, df = math.sqrt(var / k), d0 + k - 1
    lo, hi = (mean, mean) if se == 0.0 else stats.t.interval(confidence, df, loc=mean, scale=se)
    return Ratio(math.exp(mean), (math.exp(lo), math.exp(hi)), tuple(lr.tolist()), ep, se, df, tuple(pp))
