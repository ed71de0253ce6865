#!/usr/bin/env bash
# Run one search per seed, one run directory per seed under ROOT/seed<S>/.
#
#   scripts/sweep_seeds.sh --seeds "1 2 3" --root runs/sweep [--nproc 4] [--script search_supernet.py] \
#       [--torchrun "--standalone"] -- --npop 4 --train_path data/cifar_ffcv
#
# A seed whose run finished (genotype.json present) is skipped; an unfinished run is resumed
# with --resume RUN_DIR (pass the same extra flags as the first time). --nproc N > 1 launches
# torchrun (python -m torch.distributed.run) with N processes; --torchrun passes launcher
# flags (default --standalone). PYTHON picks the interpreter (default: the repo's .venv).
# A failing seed does not stop the sweep; the exit status says whether every seed finished.
# Two sweeps on one root never run one seed at once: each holds seed<S>/.sweep.lock (flock)
# while it runs seed S, and a seed another sweep holds is left to it (exit status 1).
# A search stopped by SIGTERM or SIGUSR1 (exit 143 or 138) stops the sweep with its status.
# One ROOT holds one group, a method and its scores (--scores random after -- makes the sweep a
# control): a run of another method or other scores in a seed<S>/ is refused, not skipped or
# resumed (ROOT/evolutionary and ROOT/random-scores side by side, as `make study` does).
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-}
if [ -z "$python" ]; then
  if [ -x "$repo/.venv/bin/python" ]; then python="$repo/.venv/bin/python"; else python=python3; fi
fi
seeds="" root="" nproc=1 script="$repo/search_evolutionary.py" torchrun_args="--standalone" use_torchrun=0

die() { echo "error: $*" >&2; exit 2; }
usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case $1 in
    --seeds) [ $# -ge 2 ] || die "--seeds needs a value"; seeds=$2; shift 2 ;;
    --root) [ $# -ge 2 ] || die "--root needs a value"; root=$2; shift 2 ;;
    --nproc) [ $# -ge 2 ] || die "--nproc needs a value"; nproc=$2; shift 2 ;;
    --script) [ $# -ge 2 ] || die "--script needs a value"; script=$2; shift 2 ;;
    --torchrun) [ $# -ge 2 ] || die "--torchrun needs a value"; torchrun_args=$2; use_torchrun=1; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) die "unknown option '$1': expected --seeds, --root, --nproc, --script, --torchrun, then -- and the search flags" ;;
  esac
done
extra=("$@")

[ -n "$seeds" ] || die "--seeds is required, e.g. --seeds \"1 2 3\""
[ -n "$root" ] || die "--root is required: the directory for the seed<S>/ run directories"
seed_max=2147483647  # the searches' --seed range (nas/core/config.py, SEED_MAX)
for s in $seeds; do
  # no leading zero: seed007/ would hold --seed 7; ten digits at most before bash compares numbers
  [[ $s =~ ^(0|[1-9][0-9]{0,9})$ ]] && [ "$s" -le "$seed_max" ] \
    || die "seed '$s' in --seeds: expected integers from 0 to $seed_max without leading zeros"
done
[[ $nproc =~ ^[1-9][0-9]*$ ]] || die "--nproc $nproc: expected a positive integer"
[ -f "$script" ] || die "search script $script does not exist"
for a in "${extra[@]+"${extra[@]}"}"; do
  case $a in
    --seed|--seed=*|--save|--save=*|--resume|--resume=*) die "search flag '$a' after --: the sweep sets --seed, --save and --resume itself" ;;
  esac
done
# this sweep's group: the method its script runs (unknown for another script) and its scores
case $(basename "$script") in
  search_evolutionary.py) method=evolutionary ;;
  search_supernet.py) method=supernet ;;
  *) method="" ;;
esac
scores=perturb-val
for ((i = 0; i < ${#extra[@]}; i++)); do
  case ${extra[i]} in
    --scores) scores=${extra[i + 1]:-} ;;
    --scores=*) scores=${extra[i]#--scores=} ;;
  esac
done
group="${method:-search} with $scores scores"
[ "$scores" = perturb-val ] || group="$group (a control)"
mkdir -p "$root" 2>/dev/null && [ -w "$root" ] || die "cannot create or write --root $root"
# seed<S>/ must hold runs of seed S only: another seed's run would be skipped as finished or resumed as S
for s in $seeds; do
  for cfg in "$root/seed$s"/*/config.yaml; do
    [ -f "$cfg" ] || continue
    run_seed=$(sed -n 's/^seed: *\([0-9]*\) *$/\1/p' "$cfg" | head -n 1)
    [ "$run_seed" = "$s" ] || die "$(dirname "$cfg") holds a run of seed ${run_seed:-unknown}, not $s: move it out of seed$s/"
    run_method=$(sed -n 's/^method: *\([a-z_]*\) *$/\1/p' "$cfg" | head -n 1)
    run_scores=$(sed -n 's/^scores: *\([a-z-]*\) *$/\1/p' "$cfg" | head -n 1)
    run_scores=${run_scores:-perturb-val}  # runs from before --scores
    if [ "$run_scores" != "$scores" ] || { [ -n "$method" ] && [ -n "$run_method" ] && [ "$run_method" != "$method" ]; }; then
      die "$(dirname "$cfg") holds a run of ${run_method:-unknown method} with $run_scores scores, not this sweep's $group: one --root per method and control"
    fi
  done
done
echo "== sweep: $group, seeds $seeds, under $root"

command -v flock >/dev/null || die "flock (util-linux) is required: it keeps two sweeps on one root from running a seed twice"

failed=() busy=()
for s in $seeds; do
  dir="$root/seed$s"
  mkdir -p "$dir" || { failed+=("$s"); continue; }
  exec {lock}>"$dir/.sweep.lock"  # closed after the seed (and by the kernel when the sweep dies)
  if ! flock -n "$lock"; then
    echo "== seed $s: another sweep is running it, left to that one" >&2
    busy+=("$s")
    exec {lock}>&-
    continue
  fi
  done_run=$(ls -d "$dir"/*/genotype.json 2>/dev/null | sort | tail -n 1)
  if [ -n "$done_run" ]; then
    echo "== seed $s: finished ($(dirname "$done_run")), skipped"
    exec {lock}>&-
    continue
  fi
  resume=()
  # the newest run that got its config.yaml: a directory killed before that holds nothing to resume
  last_cfg=$(ls -d "$dir"/search-*/config.yaml 2>/dev/null | sort | tail -n 1)
  if [ -n "$last_cfg" ]; then
    resume=(--resume "$(dirname "$last_cfg")")
    echo "== seed $s: resuming $(dirname "$last_cfg")"
  else
    echo "== seed $s: new run under $dir"
  fi
  if [ "$nproc" -gt 1 ] || [ "$use_torchrun" = 1 ]; then
    # shellcheck disable=SC2086  # launcher flags are a word list on purpose
    launch=("$python" -m torch.distributed.run $torchrun_args --nproc_per_node="$nproc")
  else
    launch=("$python")
  fi
  "${launch[@]}" "$script" --seed "$s" --save "$dir" "${resume[@]+"${resume[@]}"}" "${extra[@]+"${extra[@]}"}"
  rc=$?
  exec {lock}>&-
  if [ $rc -eq 143 ] || [ $rc -eq 138 ]; then  # stopped cleanly by SIGTERM / SIGUSR1: so does the sweep
    echo "== seed $s: stopped by a signal (rerun the sweep to resume it)" >&2
    exit $rc
  elif [ $rc -ne 0 ]; then
    echo "== seed $s: the search failed (rerun the sweep to resume it)" >&2
    failed+=("$s")
  elif ! ls "$dir"/*/genotype.json >/dev/null 2>&1; then
    echo "== seed $s: the search exited without writing genotype.json under $dir" >&2
    failed+=("$s")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "error: seeds ${failed[*]} did not finish" >&2
  exit 1
fi
if [ ${#busy[@]} -gt 0 ]; then
  echo "error: seeds ${busy[*]} are being run by another sweep on $root" >&2
  exit 1
fi
echo "== all seeds finished: python scripts/collect_runs.py $root"
