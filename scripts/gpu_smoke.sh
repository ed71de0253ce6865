#!/usr/bin/env bash
# GPU check and benchmark in one run, for a CUDA machine (under 8 minutes on an H100-class
# GPU): eager against CUDA graphs and inductor for NetworkCIFAR (C=36, 20 cells, batch 128
# and 256, fp32 and fp16), NetworkImageNet (batch 128) and the phase-1 and phase-3 search
# networks (batch 256), with compile/capture time, peak memory, the numerics of a captured
# and a compiled step against eager, two phase-1 models at once on the GPU, and the
# modelled wall time of the published search and CIFAR evaluation; then a short CIFAR
# evaluation, a short search (one process) and one under torchrun with one NCCL rank, all
# with --compile graphs. Torch loaders. Every log and figure goes to $OUT (default
# gpu_smoke/); each part runs even if an earlier one failed; the last lines are one table.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
OUT=${OUT:-gpu_smoke}
DATA=${DATA:-/tmp/pertnas_digits}
RUNS=${RUNS:-/tmp/pertnas_runs}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
status=0
summary=()
part() {  # part NAME CMD...: run, log to $OUT/NAME.log, report its time and exit code
  local name=$1; shift
  local tic=$SECONDS
  "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "== $name: exit $rc, $((SECONDS - tic)) s"; tail -n 3 "$OUT/$name.log"
  summary+=("| $name | exit $rc | $((SECONDS - tic)) s |")
  [ $rc -eq 0 ] || status=1
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$OUT/gpu.txt"
part data $PY scripts/write_datasets.py digits --out "$DATA" --overwrite
# inductor on NetworkCIFAR batch 128 only (plus its numerics check): each compile takes minutes
part bench_compile timeout 330 $PY scripts/bench_compile.py --device cuda --modes off,graphs,inductor \
  --inductor_cases cifar_b128_fp32 --check --concurrent 2 --warmup 3 --reps 10 --child_timeout 200 \
  --json "$OUT/compile.json"
part eval_cifar timeout 90 $PY train_eval_cifar.py --data "$DATA" --save "$RUNS/eval" --epochs 2 --train_subset 1024 \
  --batch_size 128 --loader torch --workers 4 --device cuda --compile graphs --no-progress
cp "$RUNS"/eval/eval-*/summary.json "$OUT/eval_summary.json" 2>/dev/null
TINY=(--preset tiny --device cuda --train_path "$DATA" --loader torch --workers 4 --no-progress --fast --compile graphs)
part search timeout 90 $PY search_evolutionary.py "${TINY[@]}" --compile_perturb --save "$RUNS/evo"
cp "$RUNS"/evo/search-*/summary.json "$OUT/search_summary.json" 2>/dev/null
part search_nccl_1rank timeout 90 $PY -m torch.distributed.run --standalone --nproc_per_node=1 search_supernet.py \
  "${TINY[@]}" --distributed --save "$RUNS/sup"
echo
echo "| part | result | time |"; echo "|---|---|---|"
printf '%s\n' "${summary[@]}"
sed -n '/^training step, eager vs compiled/,$p' "$OUT/bench_compile.log"
exit $status
