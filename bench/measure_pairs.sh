#!/usr/bin/env bash
# Issue 19's bars on a quiet machine: three pairs of back-to-back quick runs, each timed on the wall clock,
# `python -m bench.compare` on each pair, and the cost model's numbers measured from the six runs, written to
# reports/cpu-quick-pairs.md with the exact commands. Nothing else may run meanwhile (~30 minutes: six quick
# runs of ~4.5 min each). Extra arguments go to every `pytest bench/` (e.g. --bench-processes 3).
#   bash bench/measure_pairs.sh            # -> results/pairs/pair{1,2,3}-{a,b}.json, logs, reports/cpu-quick-pairs.md
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
OUT=${OUT:-results/pairs}
MD=${MD:-reports/cpu-quick-pairs.md}
mkdir -p "$OUT"
export TF_CPP_MIN_LOG_LEVEL=2 KERAS_BACKEND=tensorflow PYTHONHASHSEED=0
status=0
{
  echo "# CPU quick profile: three pairs of back-to-back runs (issue 19)"
  echo
  echo "Produced by \`bash bench/measure_pairs.sh $*\` at commit $(git rev-parse --short HEAD) on $(date -u +%Y-%m-%dT%H:%MZ)."
  dirty=$(git status --porcelain --untracked-files=no | awk '{print $2}' | paste -sd, -)
  [ -n "$dirty" ] && echo "**Dirty tree**: files that differed: $dirty." || echo "Clean tree."
  echo
  echo "Bars: agreement >= 90% of all rows; median half-width <= 5%; every seed-model order kept; each run <= 300 s."
  echo
  echo "| pair | run | wall (s) | command |"
  echo "|---|---|---|---|"
} > "$MD.tmp"
for p in 1 2 3; do
  for r in a b; do
    json="$OUT/pair$p-$r.json"
    cmd="$PY -m pytest bench/ -q --benchmark-json=$json $*"
    t0=$(date +%s.%N)
    $cmd > "$OUT/pair$p-$r.log" 2>&1 || status=1
    t1=$(date +%s.%N)
    wall=$($PY -c "print($t1 - $t0)")
    echo "| $p | $r | $(printf %.0f "$wall") | \`$cmd\` |" >> "$MD.tmp"
    echo "pair $p run $r: ${wall} s" >&2
  done
done
for p in 1 2 3; do
  {
    echo
    echo "## Pair $p"
    echo
    echo "\`$PY -m bench.compare $OUT/pair$p-a.json $OUT/pair$p-b.json\`"
    echo
    echo '```'
    $PY -m bench.compare "$OUT/pair$p-a.json" "$OUT/pair$p-b.json"
    echo "exit status $?"
    echo '```'
  } >> "$MD.tmp" 2>&1
done
{
  echo
  echo "## The cost model (bench/costmodel.py), measured from these six runs"
  echo
  echo "\`$PY -m bench.costmodel $OUT/pair*-?.json\`"
  echo
  echo '```'
  $PY -m bench.costmodel "$OUT"/pair*-?.json
  echo '```'
} >> "$MD.tmp" 2>&1
mv "$MD.tmp" "$MD"
echo "wrote $MD" >&2
exit $status
