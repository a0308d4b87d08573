"""bench.compare's three figures on synthetic runs timed in worker processes (built through
bench.processes.merge, as a real run's are), each on either side of its bar; the order figure with ties,
kept orders and true reversals in every combination across the two runs (issue 19)."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest

from bench import compare, processes


def run(groups: dict, seed: int, k: int = 2, epochs: int = 2, blocks: int = 4, between: float = 0.005,
        within: float = 0.01) -> dict:  # fmt: skip
    """groups: {name: (work, {member: true log-ratio})} -> a run dict as compare.load gives."""
    g = np.random.default_rng(seed)
    items = [SimpleNamespace(id=f"{name}-{m}", group=name) for name, (_, ms) in groups.items() for m in ms]
    results = []
    for p in range(k):
        outcomes = {}
        for name, (work, ms) in groups.items():
            base = g.normal(-5, 0.2, epochs * blocks)  # the machine moves whole blocks: pairing cancels it
            for m, mu in ms.items():
                off = g.normal(0, between)
                times = np.exp(base + mu + off + g.normal(0, within, base.size)).tolist()
                info = {"id": f"{name}-{m}", "kind": "row", "work": work,
                        "paired": {"group": name, "epochs": [e for e in range(epochs) for _ in range(blocks)],
                                   "order": "synthetic", "machine": {"wall_s": 1.0, "others_cores": 0.0}}}  # fmt: skip
                outcomes[info["id"]] = {"info": info, "times": times, "loops": 5, "skip": None, "error": None}
        results.append((p, {"outcomes": outcomes}))
    merged = processes.merge(items, results)
    rows = {k: {"extra_info": o.info, "stats": {"median": float(np.median(o.times))}} for k, o in merged.items()}
    return {"rows": rows, "benchmarks": list(rows.values()), "machine_info": {}}


def many(n: int = 40, moved: float = 0.0, frac: float = 0.0) -> dict:
    """n groups of four members; in the first `frac` of them every non-fastest member moved by `moved` (log)."""
    out = {}
    for i in range(n):
        shift = moved if i < frac * n else 0.0
        out[f"g{i:02d}"] = ("dense", {"a": 0.0, "b": 0.3 + shift, "c": 0.6 + shift, "d": 0.9 - shift})
    return out


def test_agreement_holds_for_the_same_truth_and_fails_when_a_third_of_the_groups_moved():
    same = compare.agreement(run(many(), 1), run(many(), 2))
    share = np.mean([ok for _, ok, *_ in same])
    assert len(same) == 120 and share >= compare.AGREE_SHARE
    moved = compare.agreement(run(many(), 1), run(many(moved=0.1, frac=0.34), 2))
    assert np.mean([ok for _, ok, *_ in moved]) < compare.AGREE_SHARE
    r = same[0][2]
    assert r.per_process is not None and len(r.per_process) == 2 and r.df is not None  # the two-level se


def test_the_median_half_width_sits_on_either_side_of_five_percent():
    narrow = compare.half_widths(run(many(), 3))
    wide = compare.half_widths(run(many(), 4, between=0.06))
    assert np.median(narrow) <= compare.HALF_WIDTH < np.median(wide)


RELATIONS = {"tie": 0.0, "b_slower": 0.25, "b_faster": -0.25}


def test_the_order_figure_in_every_combination_of_ties_kept_orders_and_reversals(capsys):
    combos = list(itertools.product(RELATIONS, repeat=2))
    g1 = {f"seed{i}": ("seed_cnn_model", {"a": 0.0, "b": RELATIONS[x]}) for i, (x, _) in enumerate(combos)}
    g2 = {f"seed{i}": ("seed_cnn_model", {"a": 0.0, "b": RELATIONS[y]}) for i, (_, y) in enumerate(combos)}
    a, b = run(g1, 5, between=0.002, within=0.005), run(g2, 6, between=0.002, within=0.005)
    got = {name: (rev, same) for name, rev, same in compare.headline(a, b)}
    assert len(got) == 9
    for i, (x, y) in enumerate(combos):
        rev, same = got[f"seed{i}"]
        reversal = {x, y} == {"b_slower", "b_faster"}
        assert bool(rev) == reversal, (x, y, rev)
        assert same == (x == y), (x, y)  # identical tie classes only when both runs say the same
    ok = compare.repeatability(a, b, ["a", "b"])
    out = capsys.readouterr().out
    assert not ok and "3. headline order: 7 of 9 seed-model groups keep their order" in out
    assert "3 of 9 with identical ties" in out
    kept = [(x, y) for x, y in combos if {x, y} != {"b_slower", "b_faster"}]
    assert len(kept) == 7


def test_a_kept_order_passes_the_bar_and_one_reversal_fails_it(capsys):
    g = {"seed": ("seed_gru_model", {"a": 0.0, "b": 0.25, "c": 0.5}), **many(20)}
    flip = dict(g, seed=("seed_gru_model", {"a": 0.0, "b": 0.5, "c": 0.25}))
    assert compare.repeatability(run(g, 7), run(g, 8), ["x", "y"])
    assert not compare.repeatability(run(g, 7), run(flip, 8), ["x", "y"])
    assert "seed: " in capsys.readouterr().out


def test_a_row_that_fails_in_one_worker_is_that_rows_error():
    items = [SimpleNamespace(id="g-a", group="g"), SimpleNamespace(id="g-b", group="g")]
    ok = {"info": {"id": "g-a", "paired": {"epochs": [0, 0], "order": "", "machine": {"wall_s": 1}}},
          "times": [1.0, 1.1], "loops": 1, "skip": None, "error": None}  # fmt: skip
    bad = {"info": None, "times": None, "loops": 1, "skip": None,
           "error": {"type": "ValueError", "message": "boom", "traceback": "tb"}}  # fmt: skip
    out = processes.merge(items, [(0, {"outcomes": {"g-a": ok, "g-b": bad}}), (1, {"outcomes": {"g-a": ok, "g-b": ok}})])
    assert isinstance(out["g-b"].error, processes.WorkerError) and "worker process 0: ValueError: boom" in str(out["g-b"].error)
    with pytest.raises(KeyError):
        out["g-c"]
