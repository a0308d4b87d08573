"""The timing bars on pytest-benchmark JSON files (no framework here; statistics in bench/paired.py).

    python -m bench.compare run1.json run2.json   # run to run, on the paired ratios of both runs
    python -m bench.compare gpu-quick.json        # fidelity: cuda rows >= 1 ms, harness vs CUDA events

Run to run prints the three figures of the paired-timing bar:
  1. agreement: the share of rows whose log-ratio to their group's reference agrees between the runs,
     |log r1 - log r2| <= t sqrt(se1^2 + se2^2), t at 97.5% with the Welch df of the two standard errors
     (bar: 90%; se and df are each run's own: over its worker processes with the run's two-level model,
     or over the epochs of a one-process run; bench/paired.py). Both runs are put on the first run's
     reference (bench.paired.rebase), and the reference rows themselves are not counted;
  2. the median half-width of the 95% intervals in each run (bar: 5%);
  3. the headline's order: for every seed-model group, no two implementations that one run orders
     distinguishably are ordered the other way by the other (ties where a run says indistinguishable).
It also lists rows whose raw per-call times moved between the runs (scipy.stats.mannwhitneyu p < 0.002 and
more than 10% apart, asv's rule), and whether either run was contended. Exit status 0 when the bars hold
(and, for one file, every cuda row >= 1 ms is within 5% of its CUDA-event median), 1 when not, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

from . import paired

AGREE_SHARE = 0.90
HALF_WIDTH = 0.05
FIDELITY = 0.05
HEADLINE_WORKS = ("seed_gru_model", "seed_cnn_model")


def load(path: str) -> dict:
    try:
        data = json.loads(Path(path).read_text())
        data["rows"] = {b["extra_info"].get("id", b["name"]): b for b in data["benchmarks"]}
        return data
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"{path}: not a pytest-benchmark JSON file ({type(e).__name__}: {e})", file=sys.stderr)
        sys.exit(2)


def groups(run: dict) -> dict[str, dict[str, dict]]:
    """{group: {row id: its extra_info["paired"]}} for kind "row" benchmarks timed in groups."""
    out: dict[str, dict[str, dict]] = {}
    for k, b in run["rows"].items():
        e = b["extra_info"]
        if e.get("kind", "row") == "row" and isinstance(e.get("paired"), dict):
            out.setdefault(e["paired"]["group"], {})[k] = e["paired"]
    return out


def _epochs(g: dict[str, dict]) -> list[int] | None:
    """The group's epoch of every block (one list for all its rows), None for a group timed in one stretch."""
    return next(iter(g.values())).get("epochs")


def _processes(g: dict[str, dict]) -> list[int] | None:
    """The worker process of every block (runs with --bench-processes >= 2), else None."""
    return next(iter(g.values())).get("processes")


def _model(g: dict[str, dict]) -> paired.Model | None:
    """The run's fitted two-level model, recorded with every row: the same standard errors as its intervals."""
    m = next(iter(g.values())).get("model")
    return paired.Model.from_dict(m) if isinstance(m, dict) else None


def _basis(g: dict[str, dict]) -> tuple:
    return _epochs(g), _processes(g), _model(g)


def agreement(a: dict, b: dict) -> list[tuple[str, bool, paired.Ratio, paired.Ratio]]:
    """(row, agrees, ratio in run a, ratio in run b) for every non-reference row of both runs, both on run a's
    reference."""
    ga, gb = groups(a), groups(b)
    out = []
    for name in sorted(set(ga) & set(gb)):
        common = sorted(set(ga[name]) & set(gb[name]))
        ref = next(iter(ga[name].values()))["reference"]
        if ref not in common:
            continue
        ra = paired.rebase({k: ga[name][k]["log_ratios"] for k in common}, ref, *_basis(ga[name]))
        rb = paired.rebase({k: gb[name][k]["log_ratios"] for k in common}, ref, *_basis(gb[name]))
        out += [(k, paired.agree(ra[k], rb[k]), ra[k], rb[k]) for k in common if k != ref]
    return out


def half_widths(run: dict) -> list[float]:
    return [p["half_width"] for g in groups(run).values() for k, p in g.items()
            if k != p["reference"] and p.get("half_width") is not None and math.isfinite(p["half_width"])]  # fmt: skip


def headline(a: dict, b: dict) -> list[tuple[str, list[tuple[str, str]], bool]]:
    """Per seed-model group in both runs: (group, pairs ordered oppositely, tie classes identical)."""
    ga, gb = groups(a), groups(b)
    out = []
    for name in sorted(set(ga) & set(gb)):
        work = a["rows"][next(iter(ga[name]))]["extra_info"].get("work")
        if work not in HEADLINE_WORKS:
            continue
        common = sorted(set(ga[name]) & set(gb[name]))
        la = {k: ga[name][k]["log_ratios"] for k in common}
        lb = {k: gb[name][k]["log_ratios"] for k in common}
        ea, eb = _basis(ga[name]), _basis(gb[name])
        ra, rb = paired.relations(la, *ea), paired.relations(lb, *eb)
        reversed_ = [pair for pair in ra if ra[pair] * rb[pair] == -1]
        out.append((name, reversed_, paired.tie_classes(la, *ea) == paired.tie_classes(lb, *eb)))
    return out


def shifts(a: dict, b: dict) -> list[tuple[str, paired.Shift]]:
    out = []
    for k in sorted(set(a["rows"]) & set(b["rows"])):
        pa, pb = a["rows"][k]["extra_info"].get("paired"), b["rows"][k]["extra_info"].get("paired")
        if pa and pb and pa.get("times_s") and pb.get("times_s"):
            out.append((k, paired.shift(pa["times_s"], pb["times_s"])))
    return out


def contention_line(path: str, run: dict) -> str:
    v = (run.get("machine_info", {}).get("nnparity") or {}).get("contention")
    if not v:
        return f"{path}: machine state not recorded (a run before paired timing, or nothing timed)"
    return f"{path}: " + ("CONTENDED: " + "; ".join(v["reasons"]) if v["contended"] else "quiet (not contended)")


def repeatability(a: dict, b: dict, paths: list[str], top: int = 8) -> bool:
    rows = agreement(a, b)
    if not rows:
        print("no paired rows in common: both runs need extra_info['paired'] (paired timing) and shared groups")
        return False
    ok = [r for r in rows if r[1]]
    share = len(ok) / len(rows)
    print(f"1. agreement: {len(ok)} of {len(rows)} rows ({share:.1%}) have log-ratios within the combined 95% "
          f"interval (bar: {AGREE_SHARE:.0%}); reference rows not counted")  # fmt: skip
    for k, _, r1, r2 in sorted((r for r in rows if not r[1]), key=lambda r: -abs(math.log(r[2].ratio / r[3].ratio)))[:top]:
        print(f"     {r1.ratio:7.3f}x ({r1.ci95[0]:.3f}-{r1.ci95[1]:.3f}) -> {r2.ratio:7.3f}x "
              f"({r2.ci95[0]:.3f}-{r2.ci95[1]:.3f})  {k}")  # fmt: skip
    widths = [half_widths(a), half_widths(b)]
    meds = [statistics.median(w) if w else math.nan for w in widths]
    print(f"2. median half-width of the 95% intervals: {meds[0]:.1%} ({paths[0]}), {meds[1]:.1%} ({paths[1]}) "
          f"(bar: {HALF_WIDTH:.0%})")  # fmt: skip
    orders = headline(a, b)
    flipped = [(g, pairs) for g, pairs, _ in orders if pairs]
    same = sum(1 for *_, identical in orders if identical)
    print(f"3. headline order: {len(orders) - len(flipped)} of {len(orders)} seed-model groups keep their order "
          f"(no pair reversed); {same} of {len(orders)} with identical ties")  # fmt: skip
    for g, pairs in flipped:
        print(f"     {g}: " + ", ".join(f"{x} vs {y}" for x, y in pairs))
    moved = [(k, s) for k, s in shifts(a, b) if s.changed]
    print(f"raw times: {len(moved)} rows moved between the runs (Mann-Whitney U p < {paired.MWU_ALPHA} and more than "
          f"{paired.MWU_FACTOR - 1:.0%} apart)")  # fmt: skip
    for k, s in sorted(moved, key=lambda ks: -abs(math.log(ks[1].ratio)))[:top]:
        print(f"     x{s.ratio:.3f} (p {s.p:.1e})  {k}")
    return share >= AGREE_SHARE and all(m <= HALF_WIDTH for m in meds) and not flipped


def fidelity(run: dict) -> bool:
    rows = [(k, r) for k, r in run["rows"].items()
            if "cuda_event_median_s" in r["extra_info"] and r["stats"]["median"] >= 1e-3]  # fmt: skip
    if not rows:
        print("  no cuda rows with a CUDA-event median")
        return True
    bad = [(k, r) for k, r in rows if abs(r["extra_info"]["cuda_event_ratio"] - 1.0) > FIDELITY]
    print(f"  {len(rows) - len(bad)} of {len(rows)} cuda rows >= 1 ms agree with CUDA events within {FIDELITY:.0%}")
    for k, r in sorted(rows, key=lambda kr: -abs(kr[1]["extra_info"]["cuda_event_ratio"] - 1.0))[:10]:
        e = r["extra_info"]
        print(f"    ratio {e['cuda_event_ratio']:.3f}  {r['stats']['median'] * 1e3:9.3f} ms vs {e['cuda_event_median_s'] * 1e3:9.3f} ms  {k}")
    return not bad


def overhead(run: dict) -> None:
    for k, r in sorted(run["rows"].items()):
        if r["extra_info"].get("work") == "empty":
            print(f"  harness overhead {r['stats']['median'] * 1e6:8.3f} us  {k}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="one JSON (fidelity) or two (run to run, then fidelity of each)")
    args = p.parse_args(argv)
    if len(args.runs) > 2:
        p.error("give one or two JSON files")
    runs = [load(r) for r in args.runs]
    for path, run in zip(args.runs, runs):
        print(contention_line(path, run))
    ok = repeatability(*runs, args.runs) if len(runs) == 2 else True
    for path, run in zip(args.runs, runs):
        print(f"{path}:")
        overhead(run)
        ok = fidelity(run) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
