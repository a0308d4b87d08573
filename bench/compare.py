"""Check the issue's two timing bars on pytest-benchmark JSON files (no framework here).

    python -m bench.compare run1.json run2.json   # repeatability: share of rows whose medians agree within 5%
    python -m bench.compare --stat min run1.json run2.json   # the same on each row's fastest call
    python -m bench.compare gpu-quick.json        # fidelity: cuda rows >= 1 ms, harness median vs CUDA events

Rows are matched by their id (extra_info["id"], else the test name). Prints the share, the worst rows, and
the harness-overhead rows. Exit status 0 when the bar holds (90% of rows within 5%; every cuda row >= 1 ms
within 5% of its CUDA-event median), 1 when it does not, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

BAR = 0.05
SHARE = 0.90


def load(path: str) -> dict[str, dict]:
    try:
        data = json.loads(Path(path).read_text())
        return {b["extra_info"].get("id", b["name"]): b for b in data["benchmarks"]}
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"{path}: not a pytest-benchmark JSON file ({type(e).__name__}: {e})", file=sys.stderr)
        sys.exit(2)


def repeatability(a: dict[str, dict], b: dict[str, dict], top: int = 10, stat: str = "median") -> bool:
    common = sorted(set(a) & set(b))
    if not common:
        print("no rows in common")
        return False
    dev = {k: b[k]["stats"][stat] / a[k]["stats"][stat] - 1.0 for k in common}
    ok = [k for k in common if abs(dev[k]) <= BAR]
    share = len(ok) / len(common)
    print(f"{len(ok)} of {len(common)} rows ({share:.1%}) have {stat}s within {BAR:.0%} (bar: {SHARE:.0%})")
    for k in sorted(common, key=lambda k: -abs(dev[k]))[:top]:
        print(f"  {dev[k]:+8.1%}  {a[k]['stats'][stat] * 1e3:10.4f} ms -> {b[k]['stats'][stat] * 1e3:10.4f} ms  {k}")
    return share >= SHARE


def fidelity(a: dict[str, dict]) -> bool:
    rows = [(k, r) for k, r in a.items() if "cuda_event_median_s" in r["extra_info"] and r["stats"]["median"] >= 1e-3]
    if not rows:
        print("no cuda rows with a CUDA-event median")
        return True
    bad = [(k, r) for k, r in rows if abs(r["extra_info"]["cuda_event_ratio"] - 1.0) > BAR]
    print(f"{len(rows) - len(bad)} of {len(rows)} cuda rows >= 1 ms agree with CUDA events within {BAR:.0%}")
    for k, r in sorted(rows, key=lambda kr: -abs(kr[1]["extra_info"]["cuda_event_ratio"] - 1.0))[:10]:
        e = r["extra_info"]
        print(f"  ratio {e['cuda_event_ratio']:.3f}  {r['stats']['median'] * 1e3:9.3f} ms vs {e['cuda_event_median_s'] * 1e3:9.3f} ms  {k}")
    return not bad


def overhead(a: dict[str, dict]) -> None:
    for k, r in sorted(a.items()):
        if r["extra_info"].get("work") == "empty":
            print(f"  harness overhead {r['stats']['median'] * 1e6:8.3f} us  {k}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="one JSON (fidelity) or two (repeatability, then fidelity of each)")
    p.add_argument("--stat", choices=("median", "min", "q1"), default="median",
                   help="the statistic compared run to run (the bar is on medians; min is the least disturbed call)")
    args = p.parse_args(argv)
    if len(args.runs) > 2:
        p.error("give one or two JSON files")
    runs = [load(r) for r in args.runs]
    ok = True
    if len(runs) == 2:
        ok = repeatability(*runs, stat=args.stat)
    for path, run in zip(args.runs, runs):
        print(f"{path}:")
        overhead(run)
        ok = fidelity(run) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
