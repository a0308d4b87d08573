#!/usr/bin/env bash
# The GPU benchmark run, in one command per profile, on a machine with PyTorch + CUDA (TensorFlow is
# optional: its rows skip with the reason). Writes JSON, logs and nvidia-smi facts under $OUT.
#
#   bash bench/gpu_run.sh quick        # ~3 min on one H100: every cuda row of the quick profile
#   bash bench/gpu_run.sh deepbench    # ~5-6 min: DeepBench's GRU sizes on cuDNN and the torch loop
#   bash bench/gpu_run.sh all          # both, one after the other (fits a 10-minute call only just)
#
# PY picks the interpreter (default python3: on the project's GPU machines the one holding PyTorch).
# Only cuda rows and cuda ceilings run (--bench-device cuda): the host CPU of a GPU box is not the
# machine the CPU report describes. Rows over tolerance fail (float64/float32) or are flagged
# (tf32/bfloat16/float16, err_ok false); either way the JSON is written and the script goes on.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/gpu}
PY=${PY:-python3}
mkdir -p "$OUT"
export TF_CPP_MIN_LOG_LEVEL=2 KERAS_BACKEND=tensorflow PYTHONHASHSEED=0 PYTHONUNBUFFERED=1

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv >"$OUT/nvidia-smi.csv" 2>&1 || true
"$PY" -c "import torch, numpy; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn',
torch.backends.cudnn.version(), 'gpu', torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
'numpy', numpy.__version__)" | tee "$OUT/versions.txt"

run() {  # profile, extra pytest arguments...
  local profile=$1
  shift
  "$PY" -m pytest bench/ -q -p no:cacheprovider --profile "$profile" --bench-device cuda \
    --benchmark-json="$OUT/gpu-$profile.json" --benchmark-columns=median,iqr,rounds "$@" 2>&1 |
    tee "$OUT/gpu-$profile.log" | tail -n 25
  echo "$profile: pytest exit ${PIPESTATUS[0]}, JSON in $OUT/gpu-$profile.json"
}

case "${1:-all}" in
  quick) run quick ;;
  deepbench) run deepbench --bench-max-time 0.3 ;;
  all)
    run quick
    run deepbench --bench-max-time 0.3
    ;;
  *)
    echo "usage: bash bench/gpu_run.sh quick|deepbench|all" >&2
    exit 2
    ;;
esac
