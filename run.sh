#!/usr/bin/env bash
# nnparity's one entry point. Installs into ./.venv on first use, then:
#   bash run.sh main   verify, benchmark (quick profile; extra args go to pytest bench/), report into results/
#   bash run.sh test   the test command: verification suite, tooling tests, bench bodies run once
set -euo pipefail
cd "$(dirname "$0")"
PY=.venv/bin/python

setup() {
  if [ ! -x "$PY" ] || [ ! -x .venv/bin/nnparity ] || ! "$PY" -c "import impls, nnparity, pytest, xdist, torch, tensorflow, keras, jax, flax, onnxruntime, tf2onnx" >/dev/null 2>&1; then
    python3 -m venv .venv
    "$PY" -m pip install --quiet --disable-pip-version-check -e '.[dev]'
  fi
}

export TF_CPP_MIN_LOG_LEVEL=2 KERAS_BACKEND=tensorflow PYTHONHASHSEED=0
case "${1:-}" in
  setup) setup ;;
  test)
    setup
    # both cores (pytest-xdist), a file per worker (a module fixture, e.g. the zoo subset, runs once); slowest 25 named
    "$PY" -m pytest verify/ tests/ -q -n 2 --dist loadfile --durations=25
    "$PY" -m pytest bench/ -q --benchmark-disable
    ;;
  main)
    # A failing check still belongs in the report (marked FAIL), so each step runs whatever the last gave.
    setup
    mkdir -p results
    status=0
    "$PY" -m pytest verify/ -q --junitxml=results/verify.xml || status=1
    "$PY" -m pytest bench/ -q --benchmark-json=results/run.json "${@:2}" || status=1
    "$PY" -m reports results/run.json --verify results/verify.xml -o results/report.md || status=1
    "$PY" -m reports audit -o results/SEED-AUDIT.md || status=1
    "$PY" -m reports porting -o results/PORTING.md || status=1
    echo "wrote results/report.md, results/SEED-AUDIT.md and results/PORTING.md (published reports: reports/README.md)"
    exit $status
    ;;
  *) echo "usage: bash run.sh main|test|setup" >&2; exit 2 ;;
esac
