#!/usr/bin/env bash
# GPU readiness check, for a CUDA machine: a short search (single process, then torchrun
# with one rank over NCCL), a short CIFAR evaluation, and the step-speed and memory
# benchmarks with AMP. Torch loaders where FFCV is not installed. Every figure goes to
# $OUT (default gpu_smoke/); each part runs even if an earlier one failed.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
OUT=${OUT:-gpu_smoke}
DATA=${DATA:-/tmp/pertnas_digits}
RUNS=${RUNS:-/tmp/pertnas_runs}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
status=0
part() {  # part NAME CMD...: run, log to $OUT/NAME.log, report its time and exit code
  local name=$1; shift
  local tic=$SECONDS
  "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "== $name: exit $rc, $((SECONDS - tic)) s"; tail -n 4 "$OUT/$name.log"
  [ $rc -eq 0 ] || status=1
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$OUT/gpu.txt"
part data $PY scripts/write_datasets.py digits --out "$DATA" --overwrite
TINY=(--preset tiny --device cuda --amp fp16 --train_path "$DATA" --loader torch --workers 4 --no-progress)
part search $PY search_evolutionary.py "${TINY[@]}" --save "$RUNS/evo"
cp "$RUNS"/evo/search-*/summary.json "$OUT/search_summary.json" 2>/dev/null
part search_nccl_1rank $PY -m torch.distributed.run --standalone --nproc_per_node=1 search_supernet.py "${TINY[@]}" \
  --distributed --fast --save "$RUNS/sup"
part eval_cifar $PY train_eval_cifar.py --data "$DATA" --save "$RUNS/eval" --epochs 2 --train_subset 1024 \
  --batch_size 128 --loader torch --workers 4 --device cuda --amp fp16 --no-progress
cp "$RUNS"/eval/eval-*/summary.json "$OUT/eval_summary.json" 2>/dev/null
part bench_step $PY scripts/bench_step.py --device cuda --batch_size 256 --eval_batch_size 128 --reps 10 --warmup 3 \
  --json "$OUT/step.json"
part bench_memory $PY scripts/bench_memory.py --device cuda --batch_size 256 --reps 5 --json "$OUT/memory.json"
exit $status
