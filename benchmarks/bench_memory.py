#!/usr/bin/env python
"""Memory and speed of one training step: supernet vs the discrete networks of PertNAS.

Builds, at the same batch size, resolution and channels: the supernet (every operation on
every edge, as weight-sharing differentiable NAS trains it), the phase-1 network (op_cap
operations per edge, one edge expanded to all operations) and the phase-3 network (one
operation per edge). Each is measured in its own process so that one cannot hide
another's peak: the median step time after warm-up, and the peak memory of the step
(CUDA: torch.cuda.max_memory_allocated; CPU: peak RSS minus the RSS before the network
was built, i.e. weights, gradients, optimizer state and activations).

  python benchmarks/bench_memory.py [--device cpu|cuda] [--batch_size 64] [--json out.json]
  python benchmarks/bench_memory.py --resolutions 32,64,128 [--batch_size 16]

At a --resolution above 55 px the networks have the stem a search at that size builds
(stride-2 convolutions down to about 32 px). --resolutions measures the supernet and the
phase-1 network at each size, at the batch and at half of it, and models from those two
points (peak = fixed + batch x per-image) the largest batch that fits in --budget_gb: a
model, not a measurement on such a device.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time

NETWORKS = ("supernet", "phase1", "phase3")
TARGET_PHASE1_RATIO = 0.25  # the method's claim: about 80 % less memory than the supernet
SWEEP_NETWORKS = ("supernet", "phase1")


def switches_for(kind: str, seed: int = 0):
    from nas.space.primitives import PRIMITIVES
    from nas.space.switches import full_switches, random_switches, with_edge

    if kind == "supernet":
        return full_switches()
    one_op = random_switches(1, random.Random(seed))
    if kind == "phase1":
        return with_edge(one_op, 13, PRIMITIVES)  # the expanded edge: the largest node's last edge
    return one_op


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure_one(args) -> dict:
    """Runs in a fresh process: build one network, time training steps, report the peak."""
    import torch
    import torch.nn as nn

    from nas.core.engine import Precision
    from nas.search.network import SearchNetwork

    torch.manual_seed(0)
    device = torch.device(args.device)
    before = rss_mb()
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    net = SearchNetwork(args.init_channels, 10, args.layers, switches_for(args.one), image_size=args.resolution).to(
        device, memory_format=fmt
    )
    opt = torch.optim.SGD(net.parameters(), 0.1, momentum=0.9, weight_decay=3e-4)
    precision = Precision.choose(device, args.amp)
    scaler = precision.make_scaler()
    x = torch.randn(args.batch_size, 3, args.resolution, args.resolution, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (args.batch_size,), device=device)
    criterion = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        with precision.autocast():
            loss = criterion(net(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for i in range(args.warmup + args.reps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        tic = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= args.warmup:
            times.append(time.perf_counter() - tic)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
    return {
        "network": args.one,
        "step_ms": 1000 * statistics.median(times),
        "peak_mb": peak,
        "params_m": sum(p.numel() for p in net.parameters()) / 1e6,
    }


def population_switches(model: int, seed: int = 1):
    """The phase-1 network of population model `model` of a run with `seed` (edge 13 expanded)."""
    from nas.search.population import initial_switches
    from nas.space.primitives import PRIMITIVES
    from nas.space.switches import with_edge

    return with_edge(initial_switches(seed, model, 1, PRIMITIVES), 13, PRIMITIVES)


def saved_activation_breakdown(kind, args) -> dict:
    """MB of tensors autograd saves for the backward pass of one step, by where they are made
    (stem, cell preprocessing, edge operations, the cell's own sums and concatenation, head):
    where the memory of a network goes, independent of the allocator."""
    import torch
    import torch.nn as nn

    from nas.search.network import SearchNetwork

    torch.manual_seed(0)
    switches = switches_for(kind) if isinstance(kind, str) else kind
    net = SearchNetwork(args.init_channels, 10, args.layers, switches).to(memory_format=torch.channels_last)
    stack, seen, sizes = [], set(), {}

    def category(name: str) -> str:
        parts = name.split(".")
        if parts[0] != "cells":
            return {"stem": "stem", "classifier": "head", "global_pooling": "head"}.get(parts[0], parts[0])
        if len(parts) == 2:
            return "cell sums and concat"
        return "edge operations" if parts[2] == "edges" else "preprocessing"

    def leave(module, inputs, output):
        stack.pop()  # returns None: a forward hook's return value would replace the output

    for name, module in net.named_modules():
        if name:
            module.register_forward_pre_hook(lambda m, i, n=name: stack.append(n))
            module.register_forward_hook(leave)

    def pack(t):
        key = (t.untyped_storage().data_ptr(), t.dtype, tuple(t.shape))
        if key not in seen and t.device.type == "cpu":
            seen.add(key)
            where = category(stack[-1]) if stack else "loss"
            sizes[where] = sizes.get(where, 0) + t.numel() * t.element_size() / 2**20
        return t

    x = torch.randn(args.batch_size, 3, args.resolution, args.resolution).contiguous(memory_format=torch.channels_last)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = nn.functional.cross_entropy(net(x), torch.zeros(args.batch_size, dtype=torch.long))
    del loss
    return {k: round(v, 1) for k, v in sorted(sizes.items(), key=lambda kv: -kv[1])}


def measure_in_process(args, kind: str, **changes) -> dict:
    """measure_one in a fresh process, with `changes` to the flags."""
    flags = {**vars(args), **changes}
    cmd = [sys.executable, __file__, "--one", kind] + [
        f"--{k}={v}"
        for k, v in flags.items()
        if k not in ("one", "json", "channels_last", "breakdown", "resolutions") and v is not None
    ]
    cmd.append("--channels_last" if args.channels_last else "--no-channels_last")
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
    if out.returncode != 0:
        sys.exit(
            f"error: measuring {kind} failed: "
            f"{out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}"
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_resolutions(args, sizes: list) -> dict:
    """Supernet and phase-1 network at each size: step time and peak at the batch, and the
    largest batch that fits in --budget_gb, modelled from the peaks at the batch and at half of it."""
    half = max(1, args.batch_size // 2)
    rows = []
    for size in sizes:
        for kind in SWEEP_NETWORKS:
            full = measure_in_process(args, kind, resolution=size)
            small = measure_in_process(args, kind, resolution=size, batch_size=half)
            per_image = max(full["peak_mb"] - small["peak_mb"], 1e-3) / (args.batch_size - half)
            fixed = max(full["peak_mb"] - per_image * args.batch_size, 0.0)
            rows.append(
                {
                    "resolution": size,
                    "network": kind,
                    "step_ms": full["step_ms"],
                    "peak_mb": full["peak_mb"],
                    "params_m": full["params_m"],
                    "per_image_mb": per_image,
                    "fixed_mb": fixed,
                    "modelled_max_batch": int((args.budget_gb * 1024 - fixed) // per_image),
                }
            )
    for row in rows:
        sup = next(r for r in rows if r["resolution"] == row["resolution"] and r["network"] == "supernet")
        row["memory_ratio"] = row["peak_mb"] / sup["peak_mb"]
    return {
        "device": args.device,
        "batch_size": args.batch_size,
        "half_batch": half,
        "init_channels": args.init_channels,
        "layers": args.layers,
        "amp": args.amp,
        "budget_gb": args.budget_gb,
        "rows": rows,
    }


def print_resolutions(res: dict) -> None:
    print(
        f"one training step, {res['device']}, batch {res['batch_size']} (and {res['half_batch']} for the model), "
        f"C={res['init_channels']}, {res['layers']} cells, amp {res['amp']}"
    )
    print(
        f"{'px':>4} {'network':9} {'step ms':>9} {'peak MB':>9} {'mem/supernet':>13} {'MB/image':>9} "
        f"{'max batch in ' + str(res['budget_gb']) + ' GB (modelled)':>30}"
    )
    for r in res["rows"]:
        print(
            f"{r['resolution']:4} {r['network']:9} {r['step_ms']:9.1f} {r['peak_mb']:9.1f} {r['memory_ratio']:13.3f} "
            f"{r['per_image_mb']:9.2f} {r['modelled_max_batch']:30}"
        )


def run_all(args) -> dict:
    results = {kind: measure_in_process(args, kind) for kind in NETWORKS}
    sup = results["supernet"]
    for kind in NETWORKS:
        results[kind]["memory_ratio"] = results[kind]["peak_mb"] / sup["peak_mb"]
        results[kind]["time_ratio"] = results[kind]["step_ms"] / sup["step_ms"]
    return {
        "device": args.device,
        "batch_size": args.batch_size,
        "resolution": args.resolution,
        "init_channels": args.init_channels,
        "layers": args.layers,
        "amp": args.amp,
        "networks": results,
        "target_phase1_memory_ratio": TARGET_PHASE1_RATIO,
        "target_met": results["phase1"]["memory_ratio"] <= TARGET_PHASE1_RATIO,
    }


def print_table(res: dict) -> None:
    print(
        f"one training step, {res['device']}, batch {res['batch_size']}, {res['resolution']}x{res['resolution']}, "
        f"C={res['init_channels']}, {res['layers']} cells, amp {res['amp']}"
    )
    print(f"{'network':10} {'params M':>9} {'step ms':>9} {'peak MB':>9} {'mem/supernet':>13} {'time/supernet':>14}")
    for kind, r in res["networks"].items():
        print(
            f"{kind:10} {r['params_m']:9.3f} {r['step_ms']:9.1f} {r['peak_mb']:9.1f} {r['memory_ratio']:13.3f} "
            f"{r['time_ratio']:14.3f}"
        )
    print(
        f"target: phase-1 memory <= {res['target_phase1_memory_ratio']:.2f} x supernet: "
        f"{'met' if res['target_met'] else 'NOT met'}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--init_channels", type=int, default=16)
    p.add_argument("--layers", type=int, default=5)
    p.add_argument("--amp", default="auto", choices=("auto", "fp16", "bf16", "off"))
    p.add_argument("--channels_last", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--one", choices=NETWORKS, help=argparse.SUPPRESS)
    p.add_argument("--json", help="also write the figures to this JSON file")
    p.add_argument("--breakdown", action="store_true", help="also print the saved activations by where they are made")
    p.add_argument(
        "--resolutions",
        help="comma-separated image sides (e.g. 32,64,128): supernet vs phase-1 network "
        "at each, with the modelled largest batch in --budget_gb",
    )
    p.add_argument("--budget_gb", type=float, default=80.0, help="device memory for the modelled batch (default 80)")
    args = p.parse_args()
    if args.one:
        print(json.dumps(measure_one(args)))
        return
    if args.resolutions:
        try:
            sizes = [int(s) for s in args.resolutions.split(",") if s.strip()]
        except ValueError:
            sys.exit(f"error: --resolutions {args.resolutions!r}: expected comma-separated integers")
        if not sizes or min(sizes) < 8 or args.batch_size < 2:
            sys.exit(
                f"error: --resolutions {args.resolutions!r} with batch {args.batch_size}: expected sides >= 8, "
                f"a batch of 2 or more"
            )
        res = run_resolutions(args, sizes)
        print_resolutions(res)
        if args.json:
            from nas.core.files import write_json

            write_json(args.json, res)
        return
    res = run_all(args)
    print_table(res)
    if args.breakdown:
        res["saved_activations_mb"] = {kind: saved_activation_breakdown(kind, args) for kind in NETWORKS}
        print("saved activations of one step (MB), by where they are made:")
        for kind, parts in res["saved_activations_mb"].items():
            print(f"  {kind:9} total {sum(parts.values()):7.1f}: " + ", ".join(f"{k} {v}" for k, v in parts.items()))
        # the phase-1 networks of a real run's population (seed 1, npop 4) rather than one draw
        supernet = sum(res["saved_activations_mb"]["supernet"].values())
        ratios = [sum(saved_activation_breakdown(population_switches(m), args).values()) / supernet for m in range(4)]
        res["population_phase1_saved_ratio"] = {
            "per_model": [round(r, 3) for r in ratios],
            "mean": sum(ratios) / len(ratios),
            "max": max(ratios),
        }
        print(
            f"phase-1 networks of a run's population (seed 1, models 0-3), saved activations / supernet: "
            f"{', '.join(f'{r:.3f}' for r in ratios)} (mean {sum(ratios) / len(ratios):.3f}, max {max(ratios):.3f})"
        )
    if args.json:
        from nas.core.files import write_json

        write_json(args.json, res)


if __name__ == "__main__":
    main()
