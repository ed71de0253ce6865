#!/usr/bin/env bash
# GPU check and benchmark in one run, for a CUDA machine (at most 8 minutes: the parts'
# timeouts add up to 470 s, plus writing the data): eager against CUDA graphs and inductor for NetworkCIFAR
# (C=36, 20 cells, batch 128 and 256, fp32 and fp16), NetworkImageNet (batch 128) and the
# phase-1 and phase-3 search networks (batch 256), with compile/capture time, peak memory, the
# numerics of a captured and a compiled step against eager, and the modelled wall time of the
# published search and CIFAR evaluation; a short CIFAR evaluation with --compile graphs; a
# short supernet search under torchrun with one NCCL rank, its stages and perturb-val
# captured; and phase 1 of the tiny evolutionary search with one and two processes on the GPU
# (--phase1_procs: time and identical scores). Torch loaders. Every log and figure goes to
# $OUT (default gpu_smoke/); each part runs even if an earlier one failed; the last lines
# are one table.
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
part bench_compile timeout 210 $PY benchmarks/bench_compile.py --device cuda --modes off,graphs,inductor \
  --inductor_cases cifar_b128_fp32 --check --warmup 3 --reps 10 --child_timeout 140 --json "$OUT/compile.json"
part eval_cifar timeout 60 $PY train_eval_cifar.py --data "$DATA" --save "$RUNS/eval" --epochs 2 --train_subset 1024 \
  --batch_size 128 --loader torch --workers 4 --device cuda --compile graphs --no-progress
cp "$RUNS"/eval/eval-*/summary.json "$OUT/eval_summary.json" 2>/dev/null
part search_nccl_1rank timeout 60 $PY -m torch.distributed.run --standalone --nproc_per_node=1 search_supernet.py \
  --preset tiny --device cuda --train_path "$DATA" --loader torch --workers 4 --no-progress --fast \
  --compile graphs --compile_perturb --distributed --save "$RUNS/sup"
cp "$RUNS"/sup/search-*/summary.json "$OUT/search_summary.json" 2>/dev/null
part phase1_procs timeout 140 $PY benchmarks/bench_phase1.py --data "$DATA" --device cuda --procs 1,2 \
  --json "$OUT/phase1.json" -- --train_subset 128
echo
echo "| part | result | time |"; echo "|---|---|---|"
printf '%s\n' "${summary[@]}"
sed -n '/^training step, eager vs compiled/,$p' "$OUT/bench_compile.log"
sed -n '/^phase 1, population models/,$p' "$OUT/phase1_procs.log"
exit $status
