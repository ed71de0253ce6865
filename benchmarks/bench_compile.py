#!/usr/bin/env python
"""Eager against compiled and captured training steps (--compile off / graphs / inductor).

For each network case and mode, in one child process per mode (so that one mode's memory
and compile caches cannot touch another's): the first step's extra time (the compile or
the capture), the median step after warm-up in images/s, and the peak memory (CUDA). The
step is the engine's: autocast, loss (+ auxiliary), GradScaler, gradient clip for the
evaluation networks, SGD with the mode's options; NetworkCIFAR trains at drop-path 0.2.

Then, at the measured speeds, the modelled wall time of the published search (npop 4,
4 GPUs, batch 256, 50,000 images, 5 epochs a stage, F+1 = 71/131/181 fine-tuning steps)
and of the CIFAR evaluation (600 epochs x 50,000 images at batch 128), with a compile or
capture per network trained; whether a capture per perturb-val candidate pays; and, with
--concurrent N, N phase-1 models trained at once on one device (N processes) against one.

--check compares one compiled/captured step with eager (loss and gradients, NetworkCIFAR
without drop-path, whose masks come from another generator under inductor).

  python benchmarks/bench_compile.py [--device cpu|cuda] [--tiny] [--modes off,graphs,inductor]
      [--cases ...] [--inductor_cases ...] [--check] [--concurrent 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name: (network, batch, precision); amp = fp16 on CUDA, bf16 on the CPU
CASES = {
    "cifar_b128_fp32": ("NetworkCIFAR", 128, "fp32"),
    "cifar_b128_amp": ("NetworkCIFAR", 128, "amp"),
    "cifar_b256_fp32": ("NetworkCIFAR", 256, "fp32"),
    "cifar_b256_amp": ("NetworkCIFAR", 256, "amp"),
    "imagenet_b128_amp": ("NetworkImageNet", 128, "amp"),
    "phase1_b256_fp32": ("search phase-1", 256, "fp32"),
    "phase3_b256_fp32": ("search phase-3", 256, "fp32"),
}
MODES = ("off", "graphs", "inductor")
# The published search (docs/method.md): per GPU, phase 1 trains one model's 14 edges, each a
# 5-epoch stage then 7 candidates x 71 steps; phases 2-4 are 17 data-parallel stages and the
# candidates split over 4 GPUs: 14 fine decisions x 1 x 131 steps, topology 1+1+2 x 181 steps.
STAGE_STEPS = 5 * math.ceil(50_000 / 256)
PUBLISHED = {
    "phase1_stages": 14,
    "phase1_candidates": 14 * 7,
    "phase1_finetune": 71,
    "stages2_4": 17,
    "stage2_4_steps": STAGE_STEPS // 4,
    "fine_candidates": 14,
    "fine_finetune": 131,
    "topo_candidates": 4,
    "topo_finetune": 181,
}
EVAL_STEPS = 600 * math.ceil(50_000 / 128)


def sizes(name: str, tiny: bool) -> dict:
    """Channels, cells, image size and batch of a case (tiny: a CPU-sized stand-in)."""
    net, batch, prec = CASES[name]
    if net == "NetworkCIFAR":
        full = {"C": 36, "layers": 20, "res": 32}
    elif net == "NetworkImageNet":
        full = {"C": 48, "layers": 14, "res": 224}
    else:
        full = {"C": 16, "layers": 5, "res": 32}
    if tiny:
        full = {"C": 4, "layers": 3, "res": 64 if net == "NetworkImageNet" else 32}
        batch = max(2, batch // 32)
    return {**full, "batch": batch, "precision": prec, "network": net}


def build(name: str, tiny: bool):
    import random

    from nas.evaluation.networks import NetworkCIFAR, NetworkImageNet
    from nas.genotype import load_genotype
    from nas.search.network import SearchNetwork
    from nas.space.primitives import PRIMITIVES
    from nas.space.switches import random_switches, with_edge

    s = sizes(name, tiny)
    if s["network"] == "NetworkCIFAR":
        net = NetworkCIFAR(s["C"], 10, s["layers"], True, load_genotype("DARTS_V2"))
        net.drop_path_prob = 0.2
    elif s["network"] == "NetworkImageNet":
        net = NetworkImageNet(s["C"], 1000, s["layers"], False, load_genotype("DARTS_V2"), image_size=s["res"])
    else:
        one_op = random_switches(1, random.Random(0))
        switches = with_edge(one_op, 13, PRIMITIVES) if s["network"] == "search phase-1" else one_op
        net = SearchNetwork(s["C"], 10, s["layers"], switches)
    return net, s


def make_step(net, s: dict, mode: str, device):
    """One training step as nas.core.engine.train takes it; returns step() and the module."""
    import torch
    import torch.nn as nn

    from nas.core.compile import optimizer_options, prepare
    from nas.core.engine import Precision, split_output

    fmt = torch.channels_last
    net = net.to(device, memory_format=fmt).train()
    precision = Precision.choose(
        device, "off" if s["precision"] == "fp32" else ("fp16" if device.type == "cuda" else "bf16")
    )
    scaler = precision.make_scaler()
    opt = torch.optim.SGD(
        net.parameters(),
        0.01,
        momentum=0.9,
        weight_decay=3e-4,
        **optimizer_options(device, mode, scaler=precision.scaled),
    )
    model = prepare(net, mode)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(s["batch"], 3, s["res"], s["res"], generator=g).to(device).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (s["batch"],), generator=g).to(device)
    criterion = nn.CrossEntropyLoss()
    evaluation = s["network"].startswith("Network")

    def step():
        opt.zero_grad(set_to_none=True)
        with precision.autocast():
            logits, aux = split_output(model(x))
            loss = criterion(logits, y)
            if aux is not None:
                loss = loss + 0.4 * criterion(aux, y)
        scaler.scale(loss).backward()
        if evaluation:
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        scaler.step(opt)
        scaler.update()
        return loss

    return step, x, y


def _sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(name: str, mode: str, args) -> dict:
    import torch

    device = torch.device(args.device)
    torch.manual_seed(0)
    net, s = build(name, args.tiny)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    step, _, _ = make_step(net, s, mode, device)
    tic = time.perf_counter()
    step()
    _sync(device)
    first = time.perf_counter() - tic
    for _ in range(args.warmup):
        step()
    _sync(device)
    times = []
    for _ in range(args.reps):
        tic = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - tic)
    median = statistics.median(times)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {
        "case": name,
        "mode": mode,
        **s,
        "step_ms": 1000 * median,
        "img_per_s": s["batch"] / median,
        "compile_s": max(first - median, 0.0),
        "peak_mb": peak,
    }


def check(mode: str, args) -> dict:
    """Two steps of NetworkCIFAR (no drop-path) eagerly and with `mode`, from the same weights:
    the largest relative difference of the loss and of any parameter's gradient."""
    import torch

    device = torch.device(args.device)
    torch.manual_seed(0)
    net, s = build("cifar_b128_fp32", args.tiny)
    net.drop_path_prob = 0.0
    twin = copy.deepcopy(net)
    results = []
    for n, m in ((net, "off"), (twin, mode)):
        step, _, _ = make_step(n, s, m, device)
        step()
        loss = step().item()
        results.append(
            (loss, {k: p.grad.detach().float().clone() for k, p in n.named_parameters() if p.grad is not None})
        )
    (loss_e, grads_e), (loss_c, grads_c) = results
    grad_rel = max(((grads_c[k] - g).norm() / g.norm().clamp_min(1e-12)).item() for k, g in grads_e.items())
    return {
        "mode": mode,
        "loss_eager": loss_e,
        "loss_mode": loss_c,
        "loss_rel": abs(loss_c - loss_e) / abs(loss_e),
        "grad_rel_max": grad_rel,
        "same_params": grads_e.keys() == grads_c.keys(),
    }


def child(args) -> None:
    """Measure every case of one mode in this process; one JSON line per result."""
    import torch

    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True
    for name in args.cases:
        try:
            res = measure(name, args.mode, args)
        except Exception as exc:  # reported in the table: one failing case must not hide the others
            res = {"case": name, "mode": args.mode, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
        print("RESULT " + json.dumps(res), flush=True)
        if args.mode == "inductor":
            torch._dynamo.reset()
    if args.check:
        print("RESULT " + json.dumps({"check": check(args.mode, args)}), flush=True)


def spawn(args, mode: str, cases: list[str], *, check: bool = False, reps=None) -> subprocess.Popen:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "--mode",
        mode,
        "--device",
        args.device,
        "--cases",
        ",".join(cases),
        "--warmup",
        str(args.warmup),
        "--reps",
        str(reps or args.reps),
    ]
    cmd += ["--tiny"] * args.tiny + ["--check"] * check
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)


def collect(proc: subprocess.Popen, timeout: float) -> list[dict]:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return [json.loads(line[7:]) for line in out.splitlines() if line.startswith("RESULT ")]


def model_published(rows: dict, mode: str) -> dict:
    """Modelled hours at the measured speeds of `mode` (eager where the mode has no figure)."""

    def t(case, m):
        r = rows.get((case, m)) or rows.get((case, "off"))
        return (r["step_ms"] / 1000, r["compile_s"]) if r and "step_ms" in r else (None, None)

    P = PUBLISHED
    (t1, c1), (t1e, _), (t3, c3), (t3e, _) = (
        t("phase1_b256_fp32", mode),
        t("phase1_b256_fp32", "off"),
        t("phase3_b256_fp32", mode),
        t("phase3_b256_fp32", "off"),
    )
    (tc, cc) = t("cifar_b128_fp32", mode)
    out = {"mode": mode}
    if None not in (t1, t1e):
        # a candidate captured anew pays when its capture costs less than its steps save
        per_candidate = (
            min(P["phase1_finetune"] * t1e, P["phase1_finetune"] * t1 + c1)
            if mode == "graphs"
            else P["phase1_finetune"] * t1e
        )
        out["phase1_h"] = (P["phase1_stages"] * (STAGE_STEPS * t1 + c1) + P["phase1_candidates"] * per_candidate) / 3600
        out["capture_per_candidate_pays"] = (
            mode == "graphs" and P["phase1_finetune"] * t1 + c1 < P["phase1_finetune"] * t1e
        )
    if None not in (t3, t3e):
        # per-GPU batches of 64 timed at the batch-256 step: an upper bound where launch-bound
        fine = P["fine_candidates"] * P["fine_finetune"] + P["topo_candidates"] * P["topo_finetune"]
        out["phases2_4_h"] = (P["stages2_4"] * (P["stage2_4_steps"] * t3 + c3) + fine * t3e) / 3600
    if "phase1_h" in out and "phases2_4_h" in out:
        out["search_h"] = out["phase1_h"] + out["phases2_4_h"]
    if tc is not None:
        # two structures (drop-path off in epoch 1, on after); validation not counted
        out["cifar_eval_h"] = (EVAL_STEPS * tc + 2 * cc) / 3600
    return out


def run(args) -> dict:
    results, checks = [], []
    for mode in args.modes:
        cases = [c for c in args.cases if mode != "inductor" or c in args.inductor_cases]
        if not cases:
            continue
        print(f"--- {mode}: {', '.join(cases)}", flush=True)
        tic = time.time()
        got = collect(spawn(args, mode, cases, check=args.check and mode != "off"), args.child_timeout)
        print(f"    ({time.time() - tic:.0f} s)", flush=True)
        results += [r for r in got if "case" in r]
        checks += [r["check"] for r in got if "check" in r]
        missing = set(cases) - {r["case"] for r in got if "case" in r}
        results += [{"case": c, "mode": mode, "error": "no result (timed out or crashed)"} for c in sorted(missing)]
    rows = {(r["case"], r["mode"]): r for r in results}
    for r in results:
        base = rows.get((r["case"], "off"))
        if "step_ms" in r and base and "step_ms" in base:
            r["speedup"] = base["step_ms"] / r["step_ms"]
    res = {
        "device": args.device,
        "tiny": args.tiny,
        "rows": results,
        "checks": checks,
        "published_model": [model_published(rows, m) for m in args.modes],
    }
    if args.concurrent > 1:
        res["concurrent"] = concurrent(args)
    return res


def concurrent(args) -> dict:
    """Phase-1 models trained at once on one device, one process each (each computes what it
    would alone, so the scores are identical), against one alone."""
    out = {"models": args.concurrent}
    for mode in args.modes:
        if mode == "inductor":
            continue  # every process would compile anew: the eager and graphs figures decide
        alone = collect(spawn(args, mode, ["phase1_b256_fp32"]), args.child_timeout)
        procs = [spawn(args, mode, ["phase1_b256_fp32"], reps=args.reps * 3) for _ in range(args.concurrent)]
        together = [r for p in procs for r in collect(p, args.child_timeout)]
        if (
            alone
            and "img_per_s" in alone[0]
            and len(together) == args.concurrent
            and all("img_per_s" in r for r in together)
        ):
            total = sum(r["img_per_s"] for r in together)
            out[mode] = {
                "alone_img_per_s": alone[0]["img_per_s"],
                "together_img_per_s": total,
                "ratio": total / alone[0]["img_per_s"],
            }
    return out


def print_report(res: dict) -> None:
    print(
        f"\ntraining step, eager vs compiled/captured, device {res['device']}"
        f"{' (tiny CPU-sized networks: C=4, 3 cells, batch/32)' if res['tiny'] else ''}; median after warm-up;"
        " compile/capture s = first step less the median"
    )
    print(
        f"{'case':18} {'network':16} {'C':>3} {'cells':>5} {'batch':>5} {'mode':9} {'img/s':>9} {'vs eager':>8} "
        f"{'compile s':>9} {'peak MB':>8}"
    )
    for r in res["rows"]:
        if "error" in r:
            print(f"{r['case']:18} {'':16} {'':>3} {'':>5} {'':>5} {r['mode']:9} failed: {r['error']}")
            continue
        peak = f"{r['peak_mb']:8.0f}" if r["peak_mb"] is not None else f"{'-':>8}"
        print(
            f"{r['case']:18} {r['network']:16} {r['C']:3d} {r['layers']:5d} {r['batch']:5d} {r['mode']:9} "
            f"{r['img_per_s']:9.1f} {r.get('speedup', float('nan')):7.2f}x {r['compile_s']:9.1f} {peak}"
        )
    for c in res["checks"]:
        ok = c["loss_rel"] < 1e-3 and c["grad_rel_max"] < 1e-2 and c["same_params"]
        print(
            f"numerics, {c['mode']} vs eager (NetworkCIFAR, 2 steps): "
            f"loss {c['loss_mode']:.6f} vs {c['loss_eager']:.6f} "
            f"(rel {c['loss_rel']:.1e}), largest relative gradient difference {c['grad_rel_max']:.1e}: "
            f"{'same within tolerance' if ok else 'DIFFERENT'}"
        )
    print("modelled wall time at these speeds (published setting; per GPU, 4 GPUs; compile/capture per network):")
    for m in res["published_model"]:
        parts = [f"{k} {v:.2f}" for k, v in m.items() if k.endswith("_h")]
        extra = (
            f"; a capture per perturb-val candidate {'pays' if m['capture_per_candidate_pays'] else 'does not pay'}"
            if m["mode"] == "graphs" and "capture_per_candidate_pays" in m
            else ""
        )
        print(f"  {m['mode']:9} " + (", ".join(parts) if parts else "no figures") + extra)
    if "concurrent" in res:
        c = res["concurrent"]
        for mode, v in c.items():
            if isinstance(v, dict):
                print(
                    f"phase-1, {c['models']} models at once on one device ({mode}): "
                    f"{v['together_img_per_s']:.1f} img/s "
                    f"vs {v['alone_img_per_s']:.1f} alone ({v['ratio']:.2f}x)"
                )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--tiny", action="store_true", help="CPU-sized networks (C=4, 3 cells, batch/32)")
    p.add_argument("--modes", default=None, help="comma-separated, default off,graphs,inductor (graphs on CUDA only)")
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {','.join(CASES)}")
    p.add_argument("--inductor_cases", default=None, help="cases also run with inductor (default: --cases)")
    p.add_argument(
        "--check", action="store_true", help="compare a compiled/captured step's loss and gradients with eager"
    )
    p.add_argument("--concurrent", type=int, default=1, help="also train this many phase-1 models at once")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--child_timeout", type=float, default=3600, help="seconds for one mode's process")
    p.add_argument("--json", help="also write the figures to this JSON file")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--mode", help=argparse.SUPPRESS)
    args = p.parse_args()
    args.cases = [c for c in args.cases.split(",") if c]
    unknown = set(args.cases) - set(CASES)
    if unknown:
        p.error(f"--cases: unknown {sorted(unknown)}, expected some of {list(CASES)}")
    if args.child:
        child(args)
        return
    default_modes = MODES if args.device == "cuda" else ("off", "inductor")
    args.modes = [m for m in (args.modes.split(",") if args.modes else default_modes) if m]
    if set(args.modes) - set(MODES) or ("graphs" in args.modes and args.device != "cuda"):
        p.error(f"--modes {','.join(args.modes)}: expected some of off,graphs,inductor (graphs on CUDA only)")
    args.inductor_cases = (
        args.cases if args.inductor_cases is None else [c for c in args.inductor_cases.split(",") if c]
    )
    res = run(args)
    print_report(res)
    if args.json:
        from nas.core.files import write_json

        write_json(args.json, res)


if __name__ == "__main__":
    main()
