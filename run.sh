#!/usr/bin/env bash
# nnparity's one entry point. Installs into ./.venv on first use, then:
#   bash run.sh main   verify, benchmark (quick profile) and write the reports under reports/
#   bash run.sh test   the test command: verification suite, tooling tests, bench bodies run once
set -euo pipefail
cd "$(dirname "$0")"
PY=.venv/bin/python

setup() {
  if [ ! -x "$PY" ] || ! "$PY" -c "import impls, pytest, torch, tensorflow, keras" >/dev/null 2>&1; then
    python3 -m venv .venv
    "$PY" -m pip install --quiet --disable-pip-version-check -e '.[dev]'
  fi
}

export TF_CPP_MIN_LOG_LEVEL=2 KERAS_BACKEND=tensorflow PYTHONHASHSEED=0
case "${1:-}" in
  setup) setup ;;
  test)
    setup
    "$PY" -m pytest verify/ tests/ -q
    "$PY" -m pytest bench/ -q --benchmark-disable
    ;;
  main)
    setup
    mkdir -p results
    "$PY" -m pytest verify/ -q --junitxml=results/verify.xml || echo "verification had failures: see results/verify.xml"
    "$PY" -m pytest bench/ -q --benchmark-json=results/run.json
    "$PY" -m reports results/run.json --verify results/verify.xml -o reports/CPU-quick.md
    "$PY" -m reports audit
    ;;
  *) echo "usage: bash run.sh main|test|setup" >&2; exit 2 ;;
esac
