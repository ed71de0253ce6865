#!/usr/bin/env bash
# GPU check and benchmark in one run, for a bare CUDA machine: a Python with torch (CUDA),
# numpy, pyyaml, tqdm, pillow, scikit-learn, tensorboard, matplotlib and onnx; no install of
# this project (PYTHONPATH is set to this repository) and nothing from outside.
#
#   scripts/gpu_smoke.sh              on the GPU (at most about 10 minutes: the parts' timeouts)
#   scripts/gpu_smoke.sh --rehearse   every part on the CPU, small sizes, no graphs/inductor
#                                     benchmark rows, the CPU stand-in for CUDA graphs
#                                     (tests/cuda_graphs.py) where a part captures; under 10 minutes
#
# Parts: the imports (one line each); the data; eager against CUDA graphs and inductor per
# network (benchmarks/bench_compile.py: img/s, capture/compile time, peak memory, numerics);
# a short CIFAR evaluation with --compile graphs; a supernet search under torchrun with two
# ranks on the one device (NCCL on the GPU, gloo in the rehearsal) for the data-parallel
# phases, with its stages and perturb-val captured (eager in the rehearsal), stopped by
# SIGTERM to its ranks at a safe point and resumed to the end; phase 1 of the tiny evolutionary search with one and two processes
# (benchmarks/bench_phase1.py). Each part runs even if an earlier one failed, every child
# has a timeout inside its part's, and each part's row and figures are written to $OUT as
# soon as it ends (a killed run keeps what it measured). The last lines are one table
# ($OUT/table.md).
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
REHEARSE=0
if [ "${1:-}" = "--rehearse" ]; then REHEARSE=1; shift; fi
[ $# -eq 0 ] || { echo "usage: scripts/gpu_smoke.sh [--rehearse]" >&2; exit 2; }
PY=${PY:-python3}
if [ $REHEARSE -eq 1 ]; then
  DEV=cpu; OUT=${OUT:-gpu_smoke_rehearsal}; RUNS=${RUNS:-/tmp/pertnas_rehearsal_runs}
  DATA=${DATA:-/tmp/pertnas_rehearsal_digits}
  GRAPHED=("$PY" tests/cpu_graphs_run.py)  # a script run with the CPU stand-in for CUDA graphs
  # part timeouts (s); the resume runs 17 decisions on two CPU processes
  DATA_LIMIT=120 EVAL_LIMIT=90 STOP_LIMIT=150 RESUME_LIMIT=300
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
else
  DEV=cuda; OUT=${OUT:-gpu_smoke}; RUNS=${RUNS:-/tmp/pertnas_runs}; DATA=${DATA:-/tmp/pertnas_digits}
  GRAPHED=("$PY")
  # part timeouts (s); with bench_compile 170 and phase1_procs 100: 570 s, under 10 minutes
  DATA_LIMIT=60 EVAL_LIMIT=60 STOP_LIMIT=90 RESUME_LIMIT=90
fi
rm -rf "$RUNS"  # runs of an earlier smoke would be found instead of this one's
mkdir -p "$OUT" "$RUNS"
TABLE="$OUT/table.md"
printf '| part | result | time |\n|---|---|---|\n' > "$TABLE"
status=0
row() { echo "$1" >> "$TABLE"; }  # written at once: a killed smoke keeps the rows so far
part() {  # part NAME SECONDS CMD...: run under a timeout, log to $OUT/NAME.log, write its row
  local name=$1 limit=$2; shift 2
  local tic=$SECONDS
  timeout -k 10 "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  local note=""
  [ $rc -eq 124 ] && note=" (timed out after $limit s)"
  echo "== $name: exit $rc$note, $((SECONDS - tic)) s"; tail -n 3 "$OUT/$name.log"
  row "| $name | exit $rc$note | $((SECONDS - tic)) s |"
  [ $rc -eq 0 ] || status=1
  return $rc
}

echo "== imports (PYTHONPATH=$REPO)"
for m in torch numpy yaml tqdm PIL sklearn tensorboard matplotlib onnx nas; do
  if ! $PY -c "import $m as m; print('import $m:', getattr(m, '__version__', ''), m.__file__)" 2>&1 | tail -n 1; then
    status=1
  fi
done | tee "$OUT/imports.txt"
if grep -qv "^import [a-zA-Z]*: " "$OUT/imports.txt" || ! grep -q "^import nas: .*$REPO/nas/" "$OUT/imports.txt"; then
  echo "an import failed (or nas is not this repository's): see above" >&2
  row "| imports | failed |  |"; cat "$TABLE"; exit 1
fi
row "| imports | ok |  |"
if [ $REHEARSE -eq 0 ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
fi
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'date', __import__('time').strftime('%Y-%m-%d'))" \
  | tee -a "$OUT/gpu.txt"

part data $DATA_LIMIT $PY scripts/write_datasets.py digits --out "$DATA" --overwrite

if [ $REHEARSE -eq 0 ]; then
  # inductor on NetworkCIFAR batch 128 only (plus its numerics check): each compile takes minutes
  part bench_compile 170 $PY benchmarks/bench_compile.py --device cuda --modes off,graphs,inductor \
    --inductor_cases cifar_b128_fp32 --check --warmup 3 --reps 10 --child_timeout 110 --json "$OUT/compile.json"
  SIZES=(--epochs 2 --train_subset 1024 --batch_size 128 --workers 4)
  SEARCH_SIZES=(--preset tiny --workers 4 --compile graphs --compile_perturb)
else
  part bench_compile 150 $PY benchmarks/bench_compile.py --device cpu --tiny --modes off \
    --cases cifar_b128_fp32,phase1_b256_fp32 --warmup 1 --reps 2 --child_timeout 120 --json "$OUT/compile.json"
  SIZES=(--epochs 1 --train_subset 64 --batch_size 16 --init_channels 4 --layers 3 --workers 0)
  # eager: 18 captures through the stand-in would not fit the rehearsal's 10 minutes (the
  # evaluation part and tests/core/test_cuda_graphs.py run the captured search paths)
  SEARCH_SIZES=(--preset tiny --workers 0 --train_subset 64 --val_size 32 --batch_size 8 --stage_epochs 1
    --pretrain_epochs 1)
fi
sed -n '/^training step, eager vs compiled/,$p' "$OUT/bench_compile.log" > "$OUT/bench_compile.txt"

part eval_cifar $EVAL_LIMIT "${GRAPHED[@]}" train_eval_cifar.py --data "$DATA" --save "$RUNS/eval" "${SIZES[@]}" \
  --loader torch --device $DEV --compile graphs --no-progress
cp "$RUNS"/eval/eval-*/summary.json "$OUT/eval_summary.json" 2>/dev/null

# two ranks on the one device: the data-parallel phases, a SIGTERM that stops both at their
# next safe point (after the first decision), and the resume that finishes the search
SEARCH=(-m torch.distributed.run --standalone --nproc_per_node=2 --max_restarts 0 search_supernet.py
  "${SEARCH_SIZES[@]}" --device $DEV --train_path "$DATA" --loader torch --no-progress --fast
  --distributed --save "$RUNS/sup")
stop_at_first_decision() {
  "$PY" "${SEARCH[@]}" &
  local pid=$! deadline=$((SECONDS + STOP_LIMIT - 40))
  until compgen -G "$RUNS/sup/search-*/decisions.json" > /dev/null; do
    if ! kill -0 $pid 2>/dev/null || [ $SECONDS -gt $deadline ]; then wait $pid; echo "no decision to stop after"; return 1; fi
    sleep 1
  done
  # to the ranks themselves, as a cluster's time limit does (torchrun would kill them 30 s
  # after forwarding a signal, maybe before their next safe point)
  kill -TERM $(pgrep -P $pid)
  wait $pid
  local rc=$?
  echo "search exit $rc"
  local line
  line=$(grep -a -h "^stopped by SIGTERM after" "$OUT/search_2ranks_stop.log" | head -n 1)  # this part's own log
  [ -n "$line" ] || { echo "no clean stop at a safe point"; return 1; }
  echo "$line"
}
part search_2ranks_stop $STOP_LIMIT bash -c "$(declare -p SEARCH RUNS OUT PY STOP_LIMIT); $(declare -f stop_at_first_decision); stop_at_first_decision"
grep -q "Duplicate GPU" "$OUT/search_2ranks_stop.log" && row "| (search) | NCCL refused two ranks on one GPU (Duplicate GPU) |  |"
part search_2ranks_resume $RESUME_LIMIT "$PY" "${SEARCH[@]}" --resume "$(ls -d "$RUNS"/sup/search-* 2>/dev/null | head -n 1)"
cp "$RUNS"/sup/search-*/summary.json "$OUT/search_summary.json" 2>/dev/null

if [ $REHEARSE -eq 0 ]; then
  part phase1_procs 100 $PY benchmarks/bench_phase1.py --data "$DATA" --device cuda --procs 1,2 --child_timeout 45 \
    --json "$OUT/phase1.json" -- --train_subset 128
else
  # two processes only (the helper process's path): a second whole search would not fit
  part phase1_procs 200 $PY benchmarks/bench_phase1.py --data "$DATA" --device cpu --procs 2 --child_timeout 190 \
    --json "$OUT/phase1.json" -- --train_subset 64 --val_size 32 --batch_size 8 --fast
fi
sed -n '/^phase 1, population models/,$p' "$OUT/phase1_procs.log" > "$OUT/phase1_procs.txt"

echo
cat "$TABLE"
cat "$OUT/bench_compile.txt" "$OUT/phase1_procs.txt"
exit $status
