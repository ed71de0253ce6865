#!/usr/bin/env python
"""Per-step training speed of the search and evaluation networks, and the cost of a
switched-off operation.

1. One training step of the phase-1 search network (op_cap 1, one edge expanded to all
   operations) and of NetworkCIFAR (DARTS_V2), for each memory format (contiguous,
   channels-last) and precision (fp32; bf16 autocast on the CPU, fp16 on CUDA): median
   images/s after warm-up, and the speed-up of each configuration over contiguous fp32.
2. A fine-tuning step of the phase-1 network with the expanded edge's most expensive
   operation switched off, against the same network built without that operation, both
   timed interleaved in this process: a switched-off operation should cost nothing.

  python benchmarks/bench_step.py [--device cpu|cuda] [--json out.json]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from nas.core.engine import Precision, split_output  # noqa: E402
from nas.search.network import SearchNetwork  # noqa: E402
from nas.space.primitives import PRIMITIVES  # noqa: E402
from nas.space.switches import random_switches, with_edge  # noqa: E402

EXPANDED_EDGE = 13
EXPENSIVE_OP = "sep_conv_5x5"


def phase1_switches():
    return with_edge(random_switches(1, random.Random(0)), EXPANDED_EDGE, PRIMITIVES)


def make_step(model: nn.Module, batch: int, res: int, device, fmt, precision: Precision):
    model = model.to(device, memory_format=fmt).train()
    opt = torch.optim.SGD(model.parameters(), 0.01, momentum=0.9)
    scaler = precision.make_scaler()
    x = torch.randn(batch, 3, res, res, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (batch,), device=device)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        with precision.autocast():
            loss = loss_fn(split_output(model(x))[0], y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return step


def time_steps(steps: dict, warmup: int, reps: int) -> dict:
    """Median seconds per step for each named step function, timed round-robin so that
    a busy moment of the machine hits every configuration alike."""
    for fn in steps.values():
        for _ in range(warmup):
            fn()
    times = {k: [] for k in steps}
    for _ in range(reps):
        for k, fn in steps.items():
            tic = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - tic)
    return {k: statistics.median(v) for k, v in times.items()}


def networks(args):
    from nas.evaluation.networks import NetworkCIFAR
    from nas.genotype import load_genotype

    yield (
        "search phase-1",
        lambda: SearchNetwork(args.init_channels, 10, args.layers, phase1_switches()),
        args.batch_size,
    )
    yield "NetworkCIFAR", lambda: NetworkCIFAR(36, 10, 20, True, load_genotype("DARTS_V2")), args.eval_batch_size


def run(args) -> dict:
    device = torch.device(args.device)
    low = "fp16" if device.type == "cuda" else "bf16"
    configs = [
        (fmt_name, fmt, prec)
        for fmt_name, fmt in (("contiguous", torch.contiguous_format), ("channels_last", torch.channels_last))
        for prec in ("fp32", low)
    ]
    rows = []
    for name, build, batch in networks(args):
        steps = {}
        for fmt_name, fmt, prec in configs:
            torch.manual_seed(0)
            precision = Precision.choose(device, "off" if prec == "fp32" else prec)
            steps[(fmt_name, prec)] = make_step(build(), batch, 32, device, fmt, precision)
        secs = time_steps(steps, args.warmup, args.reps)
        base = secs[("contiguous", "fp32")]
        for (fmt_name, prec), s in secs.items():
            rows.append(
                {
                    "network": name,
                    "format": fmt_name,
                    "precision": prec,
                    "batch": batch,
                    "step_ms": 1000 * s,
                    "img_per_s": batch / s,
                    "speedup": base / s,
                }
            )
    fastest = {}
    for name in {r["network"] for r in rows}:
        best = max((r for r in rows if r["network"] == name), key=lambda r: r["img_per_s"])
        fastest[name] = f"{best['format']} {best['precision']}"

    # switched-off operation vs a network built without it
    torch.manual_seed(0)
    fmt = torch.channels_last
    precision = Precision.choose(device, "auto")
    full = SearchNetwork(args.init_channels, 10, args.layers, phase1_switches())
    without = SearchNetwork(
        args.init_channels,
        10,
        args.layers,
        with_edge(phase1_switches(), EXPANDED_EDGE, [op for op in PRIMITIVES if op != EXPENSIVE_OP]),
    )
    step_off = make_step(full, args.batch_size, 32, device, fmt, precision)
    step_without = make_step(without, args.batch_size, 32, device, fmt, precision)
    step_on = make_step(full, args.batch_size, 32, device, fmt, precision)
    with full.switched_off(EXPANDED_EDGE, EXPENSIVE_OP):
        # the switched-off step runs inside the context; the others do not depend on it
        secs = time_steps({"switched_off": step_off, "built_without": step_without}, args.warmup, args.reps)
    secs.update(time_steps({"switched_on": step_on}, args.warmup, args.reps))
    off_ratio = secs["switched_off"] / secs["built_without"]
    return {
        "device": str(device),
        "rows": rows,
        "fastest": fastest,
        "switched_off": {
            "op": EXPENSIVE_OP,
            "edge": EXPANDED_EDGE,
            "batch": args.batch_size,
            **{k + "_ms": 1000 * v for k, v in secs.items()},
            "off_over_without": off_ratio,
            "target": "within noise (0.9-1.1)",
            "target_met": 0.9 <= off_ratio <= 1.1,
        },
    }


def print_report(res: dict) -> None:
    print(f"training step speed on {res['device']} (median after warm-up; speed-up over contiguous fp32)")
    print(f"{'network':16} {'format':14} {'precision':9} {'batch':>5} {'step ms':>9} {'img/s':>8} {'speed-up':>8}")
    for r in res["rows"]:
        print(
            f"{r['network']:16} {r['format']:14} {r['precision']:9} {r['batch']:5d} {r['step_ms']:9.1f} "
            f"{r['img_per_s']:8.1f} {r['speedup']:8.2f}"
        )
    for name, cfg in res["fastest"].items():
        print(f"fastest for {name}: {cfg}")
    s = res["switched_off"]
    print(
        f"phase-1 fine-tuning step, {s['op']} of edge {s['edge']} switched off: {s['switched_off_ms']:.1f} ms; "
        f"built without it: {s['built_without_ms']:.1f} ms; switched on: {s['switched_on_ms']:.1f} ms; "
        f"off/without = {s['off_over_without']:.3f} (target {s['target']}: {'met' if s['target_met'] else 'NOT met'})"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--batch_size", type=int, default=32, help="search network batch")
    p.add_argument("--eval_batch_size", type=int, default=16, help="NetworkCIFAR batch")
    p.add_argument("--init_channels", type=int, default=16)
    p.add_argument("--layers", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--json", help="also write the figures to this JSON file")
    args = p.parse_args()
    res = run(args)
    print_report(res)
    if args.json:
        from nas.core.files import write_json

        write_json(args.json, res)


if __name__ == "__main__":
    main()
