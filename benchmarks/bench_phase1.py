#!/usr/bin/env python
"""Phase 1 with one process per device against several (`--phase1_procs`): the same
evolutionary search run once per process count, one after the other on this machine, with
phase 1's wall time, the whole search's, the speed-up over the first count, and how the
population's valuation matrices compare with the first run's.

A model's steps depend only on their seeds, so with the same numerics the matrices are
identical (the e2e test checks this at one thread per process). Each run here shares the
machine's threads among its processes, as a user's run does; on the CPU a different thread
count sums convolutions in another order, so scores may then differ in the last bits of the
network's outputs, and a flipped prediction moves a score by one validation image.

  python benchmarks/bench_phase1.py --data data/digits [--procs 1,2] [--device cpu|cuda]
      [--json out.json] [-- extra search flags]

The search defaults to the tiny preset with one-epoch stages at lr 1.5 (the workload of the
docs/benchmarks.md's figures) on the torch loader; flags after `--` are added.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from nas.core.distributed import available_cores  # noqa: E402
from nas.core.errors import UserError, run_cli  # noqa: E402


def run(data: str, procs: int, device: str, extra: list, save: Path, timeout: float | None = None) -> dict:
    cmd = [
        sys.executable,
        str(ROOT / "search_evolutionary.py"),
        "--preset",
        "tiny",
        # the stages of docs/benchmarks.md's figures (one epoch, lr 1.5), whatever the demo's preset
        # becomes; flags after `--` still override them
        "--stage_epochs",
        "1",
        "--learning_rate",
        "1.5",
        "--train_path",
        data,
        "--loader",
        "torch",
        "--device",
        device,
        "--no-progress",
        "--save",
        str(save),
        "--phase1_procs",
        str(procs),
        *extra,
    ]
    tic = time.time()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"procs": procs, "error": f"timed out after {timeout:g} s (--child_timeout)"}
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"procs": procs, "error": f"exit {proc.returncode}: {tail}"}
    run_dir = next(d for d in save.iterdir() if d.is_dir())
    summary = json.loads((run_dir / "summary.json").read_text())
    models = sorted((run_dir / "valuation").glob("model*.json"))
    return {
        "procs": procs,
        "phase1_s": summary["time_phase1_s"],
        "search_s": round(time.time() - tic, 1),
        "matrices": [json.loads(m.read_text())["matrix"] for m in models],
        "genotype": summary["genotype"],
    }


def main() -> None:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--data",
        "--train_path",
        dest="data",
        required=True,
        help="data root (scripts/write_datasets.py digits --out DIR)",
    )
    p.add_argument("--procs", default="1,2", help="process counts to compare; the first is the baseline")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--json", help="also write the figures here")
    p.add_argument("--child_timeout", type=float, default=None, help="seconds for one search (default: no limit)")
    args = p.parse_args(argv)
    try:
        counts = [int(c) for c in args.procs.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise UserError(f"--procs {args.procs!r}: expected comma-separated process counts such as 1,2")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            print(f"phase 1 with {n} process(es) per device ...", flush=True)
            results.append(run(args.data, n, args.device, extra, Path(tmp) / f"procs{n}", args.child_timeout))
    base = results[0]
    threads = torch_threads()
    for r in results:
        if "error" not in r:
            r["threads_per_process"] = max(1, threads // r["procs"])
        if "error" not in r and "error" not in base:
            r["phase1_speedup"] = round(base["phase1_s"] / r["phase1_s"], 3) if r["phase1_s"] else None
            r["same_scores"] = r["matrices"] == base["matrices"]
            r["max_score_difference"] = max(
                abs(a - b)
                for ma, mb in zip(r["matrices"], base["matrices"])
                for ra, rb in zip(ma, mb)
                for a, b in zip(ra, rb)
            )
            r["same_genotype"] = r["genotype"] == base["genotype"]
    print("\nphase 1, population models valued at once on one device")
    print(
        f"| processes x threads | phase 1 (s) | whole search (s) | phase-1 speed-up "
        f"| scores vs {base['procs']} process "
        f"| genotype |"
    )
    print("|---|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['procs']} | {r['error']} | | | | |")
            continue
        speed = f"{r['phase1_speedup']:.2f}x" if r.get("phase1_speedup") else "-"
        same = (
            ("identical" if r["same_scores"] else f"largest difference {r['max_score_difference']:.2f} points")
            if "same_scores" in r
            else "-"
        )
        geno = ("same" if r["same_genotype"] else "different") if "same_genotype" in r else "-"
        print(
            f"| {r['procs']} x {r['threads_per_process']} | {r['phase1_s']:.1f} | {r['search_s']:.1f} | {speed} "
            f"| {same} | {geno} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"device": args.device, "extra": extra, "runs": results}, indent=1))
    if any("error" in r for r in results):
        sys.exit(1)


def torch_threads() -> int:
    """The threads a run gets here (nas.core.distributed.set_threads, one process)."""
    if os.environ.get("OMP_NUM_THREADS"):
        return int(os.environ["OMP_NUM_THREADS"])
    return available_cores()


if __name__ == "__main__":
    run_cli(main)
