#!/usr/bin/env bash
# The GPU benchmark run, in one command per profile, on a machine with PyTorch + CUDA (TensorFlow is
# optional: its rows skip with the reason). Writes JSON, logs and nvidia-smi facts under $OUT.
#
#   bash bench/gpu_run.sh quick        # every cuda row of the quick profile
#   bash bench/gpu_run.sh deepbench    # DeepBench's GRU sizes on cuDNN and the torch loop, cheapest first
#   bash bench/gpu_run.sh all          # both, one after the other, each under a deadline (below)
#   bash bench/gpu_run.sh deepbench -k "bwd or ceiling or overhead"   # further arguments go to pytest
#
# QUICK_DEADLINE and DEEPBENCH_DEADLINE (seconds, default 210 and 300 in `all`, none alone) bound each
# profile: rows not started by then skip with the reason (--bench-deadline), so the JSON is always
# written and `all` fits a 10-minute call. The log's skip summary (-rs) lists every skipped row.
# PY picks the interpreter (default python3: on the project's GPU machines the one holding PyTorch).
# Only cuda rows and cuda ceilings run (--bench-device cuda; the small cpu ceilings and overhead rows
# run too): the host CPU of a GPU box is not the machine the CPU report describes. Rows over tolerance
# fail (float64/float32) or are flagged (tf32/bfloat16/float16, err_ok false); either way the JSON is
# written and the script goes on.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/gpu}
PY=${PY:-python3}
mkdir -p "$OUT"
export TF_CPP_MIN_LOG_LEVEL=2 KERAS_BACKEND=tensorflow PYTHONHASHSEED=0 PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv >"$OUT/nvidia-smi.csv" 2>&1 || true
"$PY" -c "import torch, numpy; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn',
torch.backends.cudnn.version(), 'gpu', torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
'numpy', numpy.__version__)" | tee "$OUT/versions.txt"

run() {  # profile, deadline in seconds (empty: none), extra pytest arguments...
  local profile=$1 deadline=$2
  shift 2
  local start=$SECONDS
  "$PY" -m pytest bench/ -q -rs --durations=15 -p no:cacheprovider --profile "$profile" --bench-device cuda \
    ${deadline:+--bench-deadline "$deadline"} --benchmark-json="$OUT/gpu-$profile.json" \
    --benchmark-columns=median,iqr,rounds "$@" 2>&1 | tee "$OUT/gpu-$profile.log" | grep -v "^SKIPPED" | tail -n 25
  echo "$profile: pytest exit ${PIPESTATUS[0]} after $((SECONDS - start)) s, JSON in $OUT/gpu-$profile.json"
}

what=${1:-all}
shift || true
case "$what" in
  quick) run quick "${QUICK_DEADLINE:-}" "$@" ;;
  deepbench) run deepbench "${DEEPBENCH_DEADLINE:-}" "$@" ;;
  all)
    run quick "${QUICK_DEADLINE:-210}" "$@"
    run deepbench "${DEEPBENCH_DEADLINE:-300}" "$@"
    ;;
  *)
    echo "usage: bash bench/gpu_run.sh quick|deepbench|all" >&2
    exit 2
    ;;
esac
