#!/usr/bin/env python
"""Search scaling: the tiny CPU search with 1 process and with 2 (torchrun, gloo), one
thread per process in both runs, same seed. Reports the wall time of phase 1 and of
phases 2-4 and the training steps of each rank (from summary.json), against the targets:
phases 2-4 on 2 ranks in at most 0.65x the time of 1 rank, and no rank training more than
60 % of the steps of phases 2-4.

Also prints the model of the published setting (npop 4, 4 GPUs, batch 256, 50k images):
training steps on the critical path of phases 2-4 for the original schedule (all on
rank 0) and for ours (data-parallel training, candidates split over the ranks).

  python benchmarks/bench_scaling.py --data DIR [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# A search small enough to run twice in a few minutes on two cores, with every phase. The
# stages are pinned to the tiny preset's of docs/benchmarks.md's figures (one epoch, lr 1.5), so that
# tuning the demo's preset does not change the workload this benchmark measures.
SEARCH_ARGS = [
    "--preset",
    "tiny",
    "--stage_epochs",
    "1",
    "--learning_rate",
    "1.5",
    "--seed",
    "1",
    "--batch_size",
    "16",
    "--train_subset",
    "128",
    "--val_size",
    "64",
    "--finetune_steps",
    "1",
    "--loader",
    "torch",
    "--no-progress",
]


def run_search(data: Path, save: Path, nproc: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    launcher = (
        [sys.executable]
        if nproc == 1
        else [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    )
    cmd = launcher + [
        str(ROOT / "search_evolutionary.py"),
        "--train_path",
        str(data),
        "--save",
        str(save),
        *SEARCH_ARGS,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(f"error: the {nproc}-process search failed: {proc.stderr.strip().splitlines()[-1:]}")
    (run_dir,) = [d for d in save.iterdir() if d.is_dir()]
    return json.loads((run_dir / "summary.json").read_text())


def published_model(npop=4, gpus=4, batch=256, images=50_000, epochs=5, finetune=50, extra=(20, 80, 130)) -> dict:
    """Training steps (per-GPU batches) on the critical path of phases 2-4."""
    steps_epoch = math.ceil(images / batch)
    stage = epochs * steps_epoch
    # perturb-val takes F + 1 steps (docs/method.md, "perturb-val"), the original and ours alike
    fine_candidates, fine_steps = 2, finetune + extra[1] + 1
    nodes_edges, topo_steps = (3, 4, 5), finetune + extra[2] + 1
    trainings = 1 + 14 + 2  # coarse, after each fine decision, after the first two nodes
    original = trainings * stage + 14 * fine_candidates * fine_steps + sum(nodes_edges) * topo_steps
    ours = (
        trainings * stage / gpus
        + 14 * math.ceil(fine_candidates / gpus) * fine_steps
        + sum(math.ceil(n / gpus) for n in nodes_edges) * topo_steps
    )
    phase1 = npop // gpus * 14 * (stage + 7 * (finetune + extra[0] + 1))
    return {
        "setting": f"npop {npop}, {gpus} GPUs, batch {batch}, {images} images, {epochs} epochs a stage",
        "phase1_steps_critical_path": phase1,
        "phases2_4_original": original,
        "phases2_4_ours": round(ours),
        "phases2_4_ratio": ours / original,
        "note": "our data-parallel steps are per-GPU batches of batch/gpus; the original's are full batches on one GPU",
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--data",
        "--train_path",
        dest="data",
        required=True,
        help="embedded data set directory (scripts/write_datasets.py digits)",
    )
    p.add_argument("--json", help="also write the figures to this JSON file")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one = run_search(Path(args.data), Path(tmp) / "one", 1)
        two = run_search(Path(args.data), Path(tmp) / "two", 2)
    ratio = two["time_phases2_4_s"] / one["time_phases2_4_s"]
    steps2 = two["steps"]["phases2_4"]
    share = max(steps2) / sum(steps2)
    res = {
        "one_process": {k: one[k] for k in ("time_phase1_s", "time_phases2_4_s", "steps", "wall_time_s")},
        "two_processes": {k: two[k] for k in ("time_phase1_s", "time_phases2_4_s", "steps", "wall_time_s")},
        "phases2_4_time_ratio": ratio,
        "target_time_ratio": 0.65,
        "time_target_met": ratio <= 0.65,
        "max_rank_share_phases2_4": share,
        "target_share": 0.6,
        "share_target_met": share <= 0.6,
        "published_model": published_model(),
    }
    print("search scaling, tiny CPU search, one thread per process")
    print(f"{'processes':>9} {'phase 1 s':>10} {'phases 2-4 s':>13} {'steps phase 1':>16} {'steps phases 2-4':>18}")
    for n, r in ((1, one), (2, two)):
        print(
            f"{n:9d} {r['time_phase1_s']:10.1f} {r['time_phases2_4_s']:13.1f} {str(r['steps']['phase1']):>16} "
            f"{str(r['steps']['phases2_4']):>18}"
        )
    print(
        f"phases 2-4, 2 ranks / 1 rank: {ratio:.2f} (target <= 0.65: {'met' if res['time_target_met'] else 'NOT met'})"
    )
    print(
        f"largest rank share of phases 2-4 steps: {share:.2f} (target <= 0.60: "
        f"{'met' if res['share_target_met'] else 'NOT met'})"
    )
    m = res["published_model"]
    print(
        f"model of the published setting ({m['setting']}): phases 2-4 training steps on the critical path: "
        f"original {m['phases2_4_original']}, ours {m['phases2_4_ours']} ({m['phases2_4_ratio']:.2f}x); "
        f"phase 1: {m['phase1_steps_critical_path']} in both"
    )
    if args.json:
        from nas.core.files import write_json

        write_json(args.json, res)


if __name__ == "__main__":
    main()
