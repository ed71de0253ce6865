#!/usr/bin/env bash
# Is the search better than chance, on the CPU? (`make study`; README, "A study on the CPU")
#
#   scripts/study.sh [--data data/digits] [--out runs/study] [--seeds "1 2 3"] [--jobs 1] [--quick]
#
# Runs, with the tiny preset on the embedded data: the evolutionary search and its random-scores
# control (--scores random) for each seed (scripts/sweep_seeds.sh, one root each), and as many
# random cells of the DARTS space (pertnas genotype sample --one-cell, seed 1); then trains
# every cell with one short fixed protocol (EVAL_FLAGS below, the same for all, evaluation seed
# 0) into an eval-*/ directory beside its search (random cells: beside the cells), and writes
# one report, OUT/report.html (the sweep report: each group's val_acc and best top-1 per seed).
# A rerun skips what finished. --jobs N runs up to N searches (then evaluations) at once: on an idle
# 2-core machine one at a time is as fast (a search's phase 1 takes both cores), on a shared one
# more get a larger share. --quick checks the machinery alone, in minutes: each search with --fast
# (one batch a stage), each evaluation one epoch; its figures are no study.
# PYTHON picks the interpreter (default: the repo's .venv).
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-}
if [ -z "$python" ]; then
  if [ -x "$repo/.venv/bin/python" ]; then python="$repo/.venv/bin/python"; else python=python3; fi
fi
data="data/digits" out="runs/study" seeds="1 2 3" jobs=1 quick=0

die() { echo "error: $*" >&2; exit 2; }
usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case $1 in
    --data) [ $# -ge 2 ] || die "--data needs a value"; data=$2; shift 2 ;;
    --out) [ $# -ge 2 ] || die "--out needs a value"; out=$2; shift 2 ;;
    --seeds) [ $# -ge 2 ] || die "--seeds needs a value"; seeds=$2; shift 2 ;;
    --jobs) [ $# -ge 2 ] || die "--jobs needs a value"; jobs=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1': expected --data, --out, --seeds, --jobs or --quick" ;;
  esac
done
[ -f "$data/cifar-10-batches-py/batches.meta" ] \
  || die "--data $data: expected the embedded data set (python scripts/write_datasets.py digits --out $data)"
count=$(wc -w <<<"$seeds")
[ "$count" -ge 1 ] || die "--seeds '$seeds': expected at least one seed"
[[ $jobs =~ ^[1-9][0-9]*$ ]] || die "--jobs $jobs: expected a positive integer"

# One short evaluation protocol for every cell: a small network, a few epochs, on the digits.
EVAL_FLAGS=(--data "$data" --dataset digits --epochs 4 --init_channels 8 --layers 5 --batch_size 64
  --learning_rate 0.05 --no-auxiliary --drop_path_prob 0 --cutout_length 8 --seed 0
  --workers 0 --device cpu --log_every 1000 --no-progress)
SEARCH_FLAGS=(--preset tiny --train_path "$data" --no-progress)
if [ "$quick" = 1 ]; then
  SEARCH_FLAGS+=(--fast --stage_epochs 1 --batch_size 8)
  EVAL_FLAGS+=(--epochs 1 --train_subset 128)
fi

start=$(date +%s)
stamp() { local s=$(( $(date +%s) - start )); printf '%d min %02d s' $((s / 60)) $((s % 60)); }

mkdir -p "$out" || die "cannot create --out $out"
failures="$out/.failed-steps"  # a background step that fails says so here; drain reads it
rm -f "$failures"
throttle() {  # at most --jobs background steps at once
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
}
drain() {
  wait
  if [ -s "$failures" ]; then
    die "$(wc -l <"$failures") step(s) of the study failed: $(tr '\n' ' ' <"$failures")(rerun to resume them)"
  fi
}
sweep() {  # $1: group directory, $2: seed, then the search flags (the sweep checks the group)
  local group=$1 seed=$2; shift 2
  echo "== study: $group search, seed $seed ($(stamp))"
  PYTHON="$python" bash "$repo/scripts/sweep_seeds.sh" --seeds "$seed" --root "$out/$group" -- "$@" \
    || echo "$group seed $seed" >>"$failures"
}
for s in $seeds; do
  throttle; sweep evolutionary "$s" "${SEARCH_FLAGS[@]}" --note evolutionary &
  throttle; sweep random-scores "$s" "${SEARCH_FLAGS[@]}" --note random-scores --scores random &
done
drain

cells="$out/random-cells"
if ! ls "$cells"/random_seed1_*.json >/dev/null 2>&1; then
  "$python" -m nas.genotype sample --n "$count" --seed 1 --one-cell --out "$cells" || die "genotype sample failed"
fi

evaluate() {  # $1: the cell (a search run directory or a genotype file), $2: the directory for its eval-*/
  local arch=$1 save=$2
  for summary in "$save"/eval-*/summary.json; do
    [ -f "$summary" ] || continue
    if grep -qF "\"arch\": \"$arch\"" "$summary"; then echo "== study: $arch evaluated, skipped"; return 0; fi
  done
  echo "== study: evaluating $arch ($(stamp))"
  "$python" "$repo/train_eval_cifar.py" --arch "$arch" --save "$save" --note study "${EVAL_FLAGS[@]}" \
    || echo "evaluation of $arch" >>"$failures"
}
for group in evolutionary random-scores; do
  for s in $seeds; do
    run=$(ls -d "$out/$group/seed$s"/search-*/ 2>/dev/null | sort | tail -n 1)
    throttle; evaluate "${run%/}" "$out/$group/seed$s" &
  done
done
for cell in "$cells"/random_seed1_*.json; do
  throttle; evaluate "$cell" "$cells" &
done
drain

"$python" -m nas.report "$out" --out "$out/report.html" || die "the report failed"
"$python" "$repo/scripts/collect_runs.py" "$out" || die "the run table failed"
echo "== study done in $(stamp): $out/report.html"
