"""bench/paired.py: the paired ratios and intervals against scipy.stats computed here independently, the
reference, ties, rebasing, and the run-to-run rules (framework-free)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from bench import paired


def _times(medians: dict[str, float], blocks: int = 25, noise: float = 0.02, drift: float = 0.3, seed: int = 0):
    g = np.random.default_rng(seed)
    d = np.exp(g.normal(0, drift, blocks))
    return {k: (m * d * np.exp(g.normal(0, noise, blocks))).tolist() for k, m in medians.items()}


def test_ratio_is_the_geometric_mean_of_per_block_ratios_with_a_t_interval():
    t = _times({"a": 1.0, "b": 1.3})
    ref, r = paired.group(t)
    lr = np.log(np.asarray(t["b"]) / np.asarray(t["a"]))
    lo, hi = stats.t.interval(0.95, len(lr) - 1, loc=lr.mean(), scale=stats.sem(lr))
    assert ref == "a" and r["a"].ratio == 1.0 and r["a"].ci95 == (1.0, 1.0)
    assert r["b"].ratio == pytest.approx(math.exp(lr.mean()), rel=1e-12)
    assert r["b"].ci95 == pytest.approx((math.exp(lo), math.exp(hi)), rel=1e-12)
    assert r["b"].ci95[0] < 1.3 < r["b"].ci95[1] and r["b"].half_width == pytest.approx(math.exp(hi - lr.mean()) - 1)


def test_pairing_cancels_drift_that_a_comparison_of_independent_medians_does_not():
    t = _times({"a": 1.0, "b": 1.05}, blocks=30, noise=0.01, drift=0.3)
    _, r = paired.group(t)
    assert r["b"].ci95[0] > 1.0 and r["b"].half_width < 0.01  # 5% resolved under 30% drift
    unpaired = stats.ttest_ind(np.log(t["b"]), np.log(t["a"]))
    assert unpaired.pvalue > 0.05  # the same data, unpaired, cannot tell them apart


def test_the_reference_is_the_fastest_so_every_ratio_is_at_least_one():
    t = _times({"slow": 3.0, "fast": 1.0, "mid": 1.7})
    ref, r = paired.group(t)
    assert ref == "fast" and all(x.ratio >= 1.0 for x in r.values())
    assert [k for k, _ in sorted(r.items(), key=lambda kv: kv[1].ratio)] == ["fast", "mid", "slow"]


def test_indistinguishable_when_the_interval_includes_one_or_stays_within_three_percent():
    assert paired.indistinguishable((0.98, 1.04)) and paired.indistinguishable((1.005, 1.029))
    assert not paired.indistinguishable((1.02, 1.04)) and not paired.indistinguishable((1.04, 1.10))
    assert paired.indistinguishable(None)  # one block: nothing is known


def test_a_single_block_has_no_interval_and_constant_ratios_have_a_point_interval():
    assert paired.log_ratio_interval([0.1]).ci95 is None
    r = paired.log_ratio_interval([0.2] * 5)
    assert r.ci95 == pytest.approx((math.exp(0.2), math.exp(0.2)))


@pytest.mark.parametrize("bad", [{}, {"a": [1.0, 2.0], "b": [1.0]}, {"a": [1.0, -2.0]}, {"a": [1.0, math.nan]}])
def test_bad_block_times_are_refused_by_name(bad):
    with pytest.raises(ValueError, match="block"):
        paired.group(bad)


def test_between_and_rebase_use_the_shared_blocks():
    t = _times({"a": 1.0, "b": 1.2, "c": 1.5})
    _, r = paired.group(t)
    lr = {k: v.log_ratios for k, v in r.items()}
    direct = np.log(np.asarray(t["c"]) / np.asarray(t["b"]))
    assert paired.between(lr["c"], lr["b"]).ratio == pytest.approx(math.exp(direct.mean()), rel=1e-12)
    rb = paired.rebase(lr, "b")
    assert rb["b"].ratio == 1.0 and rb["c"].ratio == pytest.approx(math.exp(direct.mean()), rel=1e-12)
    assert rb["a"].ratio < 1.0
    with pytest.raises(KeyError, match="'z' is not in the group"):
        paired.rebase(lr, "z")


def test_tie_classes_group_rows_indistinguishable_from_each_class_leader():
    t = _times({"a": 1.0, "b": 1.005, "c": 1.5, "d": 1.51}, noise=0.01)
    _, r = paired.group(t)
    assert paired.tie_classes({k: v.log_ratios for k, v in r.items()}) == [["a", "b"], ["c", "d"]]
    rel = paired.relations({k: v.log_ratios for k, v in r.items()})
    assert rel[("a", "b")] == 0 and rel[("a", "c")] == -1 and rel[("c", "d")] == 0 and rel[("b", "d")] == -1


def test_two_runs_agree_within_their_combined_interval():
    r1 = paired.log_ratio_interval(np.log(1.2) + np.random.default_rng(1).normal(0, 0.05, 20))
    r2 = paired.log_ratio_interval(np.log(1.22) + np.random.default_rng(2).normal(0, 0.05, 20))
    r3 = paired.log_ratio_interval(np.log(1.40) + np.random.default_rng(3).normal(0, 0.05, 20))
    z = stats.norm.ppf(0.975)
    d = abs(math.log(r1.ratio) - math.log(r3.ratio))
    assert paired.agree(r1, r2) and not paired.agree(r1, r3) and d > z * math.hypot(r1.se, r3.se)
    ref = paired.Ratio(1.0, (1.0, 1.0), (0.0,) * 20)
    assert paired.agree(ref, ref)


def test_raw_times_move_only_with_mann_whitney_and_a_ten_percent_factor():
    g = np.random.default_rng(0)
    base = (1.0 + 0.02 * g.standard_normal(30)).tolist()
    same = (1.0 + 0.02 * g.standard_normal(30)).tolist()
    slower = (1.2 + 0.02 * g.standard_normal(30)).tolist()
    slightly = (1.04 + 0.005 * g.standard_normal(30)).tolist()  # significant, but within 10%
    assert not paired.shift(base, same).changed
    s = paired.shift(base, slower)
    assert s.changed and s.ratio == pytest.approx(np.median(slower) / np.median(base))
    assert s.p == pytest.approx(stats.mannwhitneyu(base, slower).pvalue)
    assert paired.shift(base, slightly).p < 0.002 and not paired.shift(base, slightly).changed


def test_with_epochs_the_interval_is_a_t_interval_over_the_epoch_means():
    g = np.random.default_rng(5)
    epochs = np.repeat(np.arange(5), 4)
    drift = np.log([1.20, 1.24, 1.18, 1.26, 1.22])  # the ratio itself moves from epoch to epoch
    lr = drift[epochs] + g.normal(0, 0.005, epochs.size)
    r = paired.log_ratio_interval(lr, epochs.tolist())
    means = np.array([lr[epochs == e].mean() for e in range(5)])
    lo, hi = stats.t.interval(0.95, 4, loc=means.mean(), scale=stats.sem(means))
    assert r.ratio == pytest.approx(math.exp(lr.mean())) and r.ci95 == pytest.approx((math.exp(lo), math.exp(hi)))
    assert r.se == pytest.approx(stats.sem(means))
    blockwise = paired.log_ratio_interval(lr)  # blocks as units would claim +-1% where the ratio moves by 3%
    assert blockwise.half_width < 0.5 * r.half_width and r.ci95[0] < 1.20 and r.ci95[1] > 1.24
    with pytest.raises(ValueError, match="one epoch per block"):
        paired.log_ratio_interval(lr, [0, 1])


def test_group_between_and_rebase_carry_the_epochs():
    t = _times({"a": 1.0, "b": 1.3, "c": 1.6}, blocks=12)
    ep = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    ref, r = paired.group(t, ep)
    assert ref == "a"
    assert r["a"].ci95 == (1.0, 1.0) and r["b"].epochs == tuple(ep)
    lr = {k: v.log_ratios for k, v in r.items()}
    assert paired.between(lr["c"], lr["b"], ep).se == pytest.approx(
        stats.sem([np.mean(np.subtract(lr["c"], lr["b"])[i:i + 3]) for i in range(0, 12, 3)]))
    assert paired.rebase(lr, "b", ep)["c"].ci95 == paired.between(lr["c"], lr["b"], ep).ci95
