#!/usr/bin/env bash
# The package as a new user gets it: a wheel of this checkout, installed WITHOUT the editable install
# into a fresh venv, used from a directory outside the clone: `pertnas genotype show DARTS_V2`, the
# embedded data set, a `--preset tiny --fast` search, a one-epoch evaluation of its cell under
# torchrun (python -m nas.evaluation), `pertnas report` of both, the run table, a plot and an export.
# Run by tests/packaging/test_package.py (a slow test, so by `make test` and CI).
#
#   PY=.venv/bin/python bash scripts/check_wheel.sh      (PY: the venv whose torch the new one reuses)
#
# The new venv reuses PY's installed packages through a .pth line (torch is 6 GB: never downloaded
# again); pip installs the wheel into the new venv with --no-index, so every declared dependency must
# already be installed, and its own site-packages come first, so `nas` is the wheel's, not the clone's.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
unset PYTHONPATH  # nothing may import from the clone
export OMP_NUM_THREADS=1 PIP_DISABLE_PIP_VERSION_CHECK=1

say() { echo "check_wheel: $*"; }

# 1. the wheel, built from a copy of what it packages (so the build leaves no build/ in the clone)
mkdir -p "$WORK/src"
cp -r "$ROOT/pyproject.toml" "$ROOT/README.md" "$ROOT/nas" "$WORK/src/"
find "$WORK/src" -name __pycache__ -prune -exec rm -rf {} +
"$PY" -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir "$WORK/dist" "$WORK/src" 2>&1 |
    grep -v "^WARNING: Location" || true
WHEEL="$(ls "$WORK"/dist/pertnas-*.whl)"
say "built $(basename "$WHEEL")"

# 2. a clean venv seeing PY's packages (torch, the tools' dependencies), the wheel installed into it
"$PY" -m venv --without-pip "$WORK/venv"
VPY="$WORK/venv/bin/python"
"$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"]); print(sysconfig.get_paths()["platlib"])' |
    sort -u >"$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/reuse-installed.pth"
"$VPY" -m pip install --quiet --no-index "$WHEEL" 2>&1 | grep -v "^WARNING: Location" || true
BIN="$WORK/venv/bin"

# 3. from a directory outside the clone
mkdir -p "$WORK/user"
cd "$WORK/user"
where="$("$VPY" -c 'import nas; print(nas.__file__)')"
case "$where" in
"$WORK/venv/"*) say "nas imports from the wheel ($where)" ;;
*) echo "check_wheel: nas imports from $where, not from the installed wheel" >&2 && exit 1 ;;
esac
"$BIN/pertnas" --version
"$BIN/pertnas" genotype show DARTS_V2 >genotype.txt
grep -q "sep_conv_3x3" genotype.txt
"$BIN/pertnas" data digits --out data/digits >/dev/null
"$BIN/pertnas" search evolutionary --preset tiny --fast --stage_epochs 1 --batch_size 8 --train_path data/digits \
    --save runs --loader torch --no-progress >search.txt 2>&1 || { tail -n 30 search.txt >&2 && exit 1; }
run="$(ls -d runs/search-*)"
test -f "$run/genotype.json"
say "search: $run"
"$VPY" -m torch.distributed.run --standalone --nproc_per_node=2 -m nas.evaluation cifar --arch "$run" \
    --data data/digits --save evals --epochs 1 --init_channels 4 --layers 3 --batch_size 32 --train_subset 64 \
    --workers 0 --device cpu --loader torch --no-progress >eval.txt 2>&1 || { tail -n 30 eval.txt >&2 && exit 1; }
eval_run="$(ls -d evals/*/)"
test -f "$eval_run/summary.json"
say "evaluation (torchrun, 2 processes): $eval_run"
"$BIN/pertnas" report "$run" --out search.html
"$BIN/pertnas" report "$eval_run" --out eval.html
test -s search.html && test -s eval.html
# the other tools that need no extra: the run table, a cell plot, the standalone export
"$BIN/pertnas" runs . >runs.txt && grep -q "evolutionary" runs.txt
"$BIN/pertnas" genotype plot DARTS_V2 --out plots >/dev/null && test -s plots/DARTS_V2_normal.png
"$BIN/pertnas" genotype export "$run" --out cell.py >/dev/null && "$VPY" -c "import cell; cell.build()"
say "ok: genotype show, search, evaluation, reports, run table, plot and export from the installed wheel"
