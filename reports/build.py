"""Assemble one Markdown report from validated runs (and junit XML): provenance, headline,
environment, ceilings, per-work tables, scaling plots, comparisons, verification, seed audit.

Everything is read and checked before anything is written; PNGs and the Markdown are each written
atomically, the Markdown last."""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import shlex
from collections import Counter
from pathlib import Path

import pandas as pd

from . import fidelity, headline, plots, ranking, rnn_compare, tables, verify_summary
from .load import Run, load_runs
from .markdown import atomic_write, code_block, escape, table

SEED_AUDIT = "SEED-AUDIT.md"
PORTING = "PORTING.md"
def command_line(argv: list[str]) -> str:
    """The exact command, reconstructed from argv (after `python -m reports`)."""
    return "python -m reports " + shlex.join(argv)


def results_section(latest: list[tuple[str, pd.DataFrame]], out_dir: Path, stem: str,
                    draw: bool) -> tuple[list[str], list[tuple[dict, Path]]]:  # fmt: skip
    labels = [label for label, _ in latest]
    allrows = pd.concat([df for _, df in latest], ignore_index=True)
    plan = plots.plan(allrows) if draw else []
    pngs = [(item, out_dir / plots.file_name(stem, item)) for item in plan]
    out = ["## Results per work item", "",
           ("Median per call and its IQR over the blocks (pytest-benchmark's stats: one round per block of "
            "`loops` calls), × fastest: the paired ratio to the fastest implementation of the same work item "
            "(shape, device, precision, pass) timed in the same interleaved blocks, with its 95% interval, "
            "GFLOP/s and GB/s from each row's FLOP and byte counts, the share of "
            "this run's measured ceiling (matmul FLOP/s for compute-bound rows, copy GB/s for memory-bound "
            "ones, same device and precision; the bound is the row's own, else the larger share), and the error against the NumPy float64 reference. **FAIL** marks a row "
            "out of tolerance."), ""]  # fmt: skip
    if not pngs:
        why = "--no-plots was given" if not draw else "these runs have no hidden, seq_len or batch sweep"
        out += [f"No scaling plots: {why} (`pytest bench/ --profile full` measures the sweeps).", ""]
    for (work, pas), sec in allrows.groupby(list(tables.SECTION), sort=True):
        out += [f"### {escape(work)} · {escape(pas)}", ""]
        conv = sorted({str(c) for c in sec["flop_convention"] if c})
        if len(conv) > 1:  # say which rows use which
            by = sec.groupby("flop_convention")["sweep"].agg(lambda v: ", ".join(sorted(set(v))))
            conv = [f"{c} (sweeps: {by[c]})" for c in conv]
        if conv:
            out += [f"FLOPs counted as: {escape('; '.join(conv))} (DESIGN.md, 'Benchmark rows').", ""]
        for (dev, prec, var), sub in sec.groupby(list(tables.SUBSECTION), sort=True):
            out += [f"#### {' · '.join(escape(x) for x in (work, pas, dev, prec, var) if x)}", ""]
            if len(labels) > 1:
                out += ["Median (× fastest on that machine), a column per machine:", "",
                        table(tables.merged_table(sub, labels), escape_cells=True)]  # fmt: skip
            for label in labels:
                mine = sub[sub["machine"] == label]
                if mine.empty:
                    continue
                if len(labels) > 1:
                    out.append(f"On **{escape(label)}**:\n")
                out.append(table(tables.detail_table(mine), escape_cells=True))
        links = [(i, p) for i, p in pngs if i["work"] == work and pas == max(i["rows"]["pass"])]
        if links:  # after the work's last pass section: one PNG per sweep, all passes in panels
            out += [f"Scaling of {escape(work)} (every pass, one panel each):", ""]
            out += [f"![{escape(i['work'])} {escape(i['sweep'])} sweep]({p.name})" for i, p in links]
            out.append("")
    return out, pngs


def fidelity_section(runs: list[Run]) -> list[str]:
    """Per machine: the harness's cuda medians against CUDA events of the same calls (latest run of each row)."""
    out = []
    for rs in tables.by_machine(runs).values():
        ceil = pd.concat([r.ceilings for r in rs if not r.ceilings.empty] or [pd.DataFrame()], ignore_index=True)
        timed = pd.concat([tables.machine_rows(rs), ceil[ceil["work"] != "empty"] if not ceil.empty else ceil],
                          ignore_index=True)  # fmt: skip
        if "id" in timed:
            timed = timed.drop_duplicates("id", keep="last")
        lines = fidelity.section(timed, ceil[ceil["work"] == "empty"] if not ceil.empty else ceil)
        if lines and len(runs) > len(rs):
            lines[0] += f" ({escape(rs[-1].label)})"
        out += lines
    return out


def comparison_section(runs: list[Run]) -> list[str]:
    out = []
    for rs in tables.by_machine(runs).values():
        for old, new in itertools.pairwise(rs):
            t, c = ranking.compare(old, new)
            out += [f"### {escape(new.label)}: {escape(old.path)} → {escape(new.path)}", ""]
            if t.empty:  # e.g. a quick and a deepbench run of one machine: different rows, nothing to compare
                out += [f"No rows in common ({c['only old']} only in the old run, {c['only new']} only in the new).", ""]
                continue
            judged = c["agree"] + c["differ"]
            out += [(f"Relative speed: {c['agree']} of {judged} rows keep their ratio to the group's reference "
                     f"(the two runs' log-ratios within 1.96·√(se₁² + se₂²), on the old run's reference; "
                     f"{c['reference']} reference rows not counted). Absolute speed: {c['faster']} rows faster, "
                     f"{c['slower']} slower (Mann-Whitney U on the per-block times, p < 0.002, and more than 10% "
                     f"apart), {c['unchanged']} unchanged."
                     + (f" {c['unpaired']} rows come from a run before paired timing and are not judged."
                        if c["unpaired"] else "")
                     + f" {c['only old']} rows only in the old run, {c['only new']} only in the new."), "",
                    table(t, escape_cells=True)]  # fmt: skip
    return (["## Comparison with earlier runs of the same machine", ""] + out) if out else []


def verification_section(verify: dict[str, list]) -> list[str]:
    paths = list(verify)
    if not paths:
        return ["## Verification", "", "Not included: no `--verify` junit XML was given.", ""]
    results = [r for rs in verify.values() for r in rs]
    tot = verify_summary.totals(results)
    out = ["## Verification", "",
           f"From {', '.join(escape(p) for p in paths)}: {len(results)} tests, "
           + ", ".join(f"{tot.get(o, 0)} {o}" for o in verify_summary.OUTCOMES if tot.get(o) or o != "xfailed") + ".",
           "", "Tests per property and implementation:", "",
           table(verify_summary.counts_table(results), escape_cells=True)]  # fmt: skip
    reasons = verify_summary.skip_reasons(results)
    if not reasons.empty:
        out += ["Skip reasons:", "", table(reasons, escape_cells=True)]
    fails, n = verify_summary.failures(results)
    if n:
        out += [f"Failures ({n}{', first 50 listed' if n > 50 else ''}):", "", table(fails, escape_cells=True)]
    out += verify_summary.headroom_section(paths)
    return out


def embedded_section(out_dir: Path, name: str, title: str, command: str) -> list[str]:
    """A published Markdown file (beside the report, else in reports/) under `title`, its headings demoted."""
    here = [out_dir / name, Path(__file__).resolve().parent / name]
    found = next((p for p in here if p.is_file()), None)
    if found is None:
        return [f"## {title}", "", f"No {name} exists yet (`{command}` writes it).", ""]
    rel = os.path.relpath(found, out_dir.resolve())
    out = [f"## {title}", "", f"From [{name}]({Path(rel).as_posix()}):", ""]
    fence = None
    for line in found.read_text(encoding="utf-8").splitlines():
        stripped = line.lstrip()
        if stripped.startswith(("```", "~~~")):
            fence = None if fence else stripped[:3]
        out.append("##" + line if (fence is None and line.startswith("#")) else line)  # demote its headings
    return out + [""]


def seed_audit_section(out_dir: Path) -> list[str]:
    return embedded_section(out_dir, SEED_AUDIT, "Seed audit", "python -m reports audit")


def porting_section(out_dir: Path) -> list[str]:
    return embedded_section(out_dir, PORTING, "Porting: what the ONNX exporters emit", "python -m reports porting")


def provenance(argv: list[str], runs: list[Run], verify: list[str]) -> list[str]:
    files = pd.DataFrame([{"file": r.path, "sha256": r.sha256[:16], "machine": r.label, "run at": r.datetime,
                           "rows": str(len(r.rows)), "ceilings": str(len(r.ceilings))} for r in runs])  # fmt: skip
    out = ["Produced by:", "", code_block(command_line(argv)), "Benchmark JSON read:", "",
           table(files, escape_cells=True)]  # fmt: skip
    for p in verify:
        digest = hashlib.sha256(Path(p).read_bytes()).hexdigest()[:16]
        out.append(f"Verification XML read: {escape(p)} (sha256 {digest})\n")
    return out + tree_lines(runs)


def tree_lines(runs: list[Run]) -> list[str]:
    """Which commit each run, and this report, came from; a dirty tree names the files that differed."""
    from bench.machine import tree

    out = []
    for r in runs:
        t = r.tree
        if t is None:
            continue
        if t.get("dirty"):
            out.append(f"- **{escape(r.path)} was run from a dirty tree** (commit {escape(str(t.get('commit'))[:12])}); "
                       f"files that differed: {escape(', '.join(t['dirty']))}")  # fmt: skip
        elif t.get("commit"):
            out.append(f"- {escape(r.path)}: run from clean commit {escape(t['commit'][:12])}")
    me = tree(Path(__file__).resolve().parents[1])
    if me.get("dirty"):
        out.append(f"- **This report was built from a dirty tree** (commit {escape(str(me.get('commit'))[:12])}); files "
                   f"that differed: {escape(', '.join(me['dirty']))}")  # fmt: skip
    elif me.get("commit"):
        out.append(f"- This report was built from clean commit {escape(me['commit'][:12])}")
    return (["Source trees:", ""] + out + [""]) if out else []


def render(runs: list[Run], verify: dict[str, list], out: Path, argv: list[str], title: str,
           draw: bool = True) -> tuple[str, list[tuple[dict, Path]]]:  # fmt: skip
    """The Markdown text and the plots it links (not yet drawn)."""
    latest = [(rs[-1].label, tables.machine_rows(rs)) for rs in tables.by_machine(runs).values()]
    results, pngs = results_section(latest, out.parent, out.stem, draw)
    doc = [f"# {escape(title)}", ""] + provenance(argv, runs, verify)
    verified = None
    if verify:
        verified = {}
        for r in (r for rs in verify.values() for r in rs):
            verified.setdefault(r.impl, Counter())[r.outcome] += 1
    doc += headline.section(runs, latest, verified)
    doc += ["## Environment", "", table(tables.environment(runs), escape_cells=True)]
    ceil = tables.ceilings_table(runs)
    no_ceiling = "_none in these runs: no ceiling shares can be given._\n"
    doc += ["## Measured ceilings", "",
            "Best rate of the run's own matmul and copy benchmarks; shares are taken against these.", "",
            table(ceil, escape_cells=True) if not ceil.empty else no_ceiling]  # fmt: skip
    if len(latest) < len(runs):
        results[4:4] = [("Where one machine has several runs, tables and plots take each row from the latest run "
                        "that measured it; the comparison below shows what changed between them."), ""]  # fmt: skip
    doc += results + [line for _, df in latest for line in rnn_compare.section(df)]
    doc += [line for _, df in latest for line in rnn_compare.seq_section(df)]
    doc += fidelity_section(runs) + comparison_section(runs) + verification_section(verify)
    doc += seed_audit_section(out.parent) + porting_section(out.parent)
    warnings = [w for r in runs for w in r.warnings]
    if warnings:
        doc += ["## Warnings", ""] + [f"- {escape(w)}" for w in warnings] + [""]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(doc)).rstrip() + "\n", pngs


def build(json_paths: list[str], verify: list[str], out: str | Path, argv: list[str],
          title: str = "nnparity benchmark report", draw: bool = True) -> Path:  # fmt: skip
    """Read, validate, render, then write the PNGs and last the Markdown. Returns the report's path."""
    out = Path(out)
    runs = load_runs(json_paths)
    # read now, so a bad XML stops the build before anything is written
    results = {p: verify_summary.read_junit(p) for p in verify}
    text, pngs = render(runs, results, out, argv, title, draw)
    for item, path in pngs:
        plots.draw(item, path)
    atomic_write(out, text)
    return out
