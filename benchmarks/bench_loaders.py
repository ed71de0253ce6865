#!/usr/bin/env python
"""Images per second of the FFCV and the torch loaders, side by side, on the same data.

--case cifar: a synthetic CIFAR-10-sized data set (--images training images of 32x32 RGB,
in the CIFAR-10 pickle layout, then the .beton files through scripts/write_datasets.py's
code), read with the search training pipeline (flip, translate 2 px, cutout 8 px,
normalisation). --case imagenet: synthetic JPEG class folders (smooth colour patterns of
ImageNet-like sizes, about 400 x 350), then train.beton and val.beton, read with the
ImageNet evaluation's training pipeline (random resized crop 224, flip, colour jitter,
normalisation). Either is written to a temporary root, or read from --data. Each loader runs
in its own process with float batches on --device, the same workers (default: all cores)
and batch size; one warm-up epoch (FFCV compiles its pipeline, the torch workers start),
then --repeats timed epochs. Prints the median images/s of each and the ratio FFCV / torch
(target: >= 3).

  python benchmarks/bench_loaders.py [--case cifar|imagenet] [--images 10000] [--batch-size 256]
                                  [--repeats 5] [--workers N] [--device cpu] [--data ROOT] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nas.core.errors import UserError, run_cli  # noqa: E402

BACKENDS = ("ffcv", "torch")
CASES = ("cifar", "imagenet")
IMAGENET_CLASSES = 10
TARGET_RATIO = 3.0


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--case", choices=CASES, default="cifar", help="data and pipeline (default cifar)")
    p.add_argument("--images", type=int, default=10000, help="synthetic training images (default 10000)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5, help="timed epochs per loader after the warm-up")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="FFCV threads / DataLoader workers")
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--data", "--train_path", dest="data", help="an existing data root of the case (its .beton files and raw data)"
    )
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--measure", choices=BACKENDS, help=argparse.SUPPRESS)  # internal: one loader, JSON to stdout
    args = p.parse_args(argv)
    for name in ("images", "batch_size", "repeats", "workers"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} {getattr(args, name)}: expected a positive number")
    return args


def write_synthetic(root: Path, images: int) -> None:
    import numpy as np

    from nas.data.raw import ImageArrays, write_cifar10_batches
    from nas.data.writer import write_cifar

    rng = np.random.default_rng(0)

    def arrays(n):
        return ImageArrays(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n))

    raw = root / "cifar-10-batches-py"
    raw.mkdir(parents=True)
    write_cifar10_batches(
        raw,
        arrays(images),
        arrays(max(1, images // 5)),
        [str(i) for i in range(10)],
        readme="<p>synthetic benchmark data</p>\n",
    )
    write_cifar("cifar10", raw, root, workers=os.cpu_count() or 1)


def write_synthetic_imagenet(root: Path, images: int) -> None:
    """JPEG class folders of smooth colour patterns (JPEG-friendly, as photographs), then the
    .beton files."""
    import numpy as np
    from PIL import Image

    from nas.data.writer import write_imagenet

    rng = np.random.default_rng(0)
    src = root / "src"
    for split, count in (("train", images), ("val", max(IMAGENET_CLASSES, images // 10))):
        for i in range(count):
            folder = src / split / f"n{i % IMAGENET_CLASSES:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            h, w = (int(v) for v in rng.integers(300, 450, 2))
            rows, cols = np.mgrid[0:h, 0:w]
            base = rng.integers(40, 215, 3)
            pixels = np.stack([base[k] + 40 * np.sin(cols / (6.0 + k) + rows / 9.0) for k in range(3)], -1)
            Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / f"{i}.JPEG", quality=90)
    write_imagenet(src, root, max_side=500, quality=90, workers=os.cpu_count() or 1)


def measure(args) -> dict:
    """In a fresh process: time whole epochs of the case's training loader."""
    import torch

    from nas.data.loaders import DataConfig, build_eval_loaders, build_search_loaders

    device = torch.device(args.device)
    if args.case == "cifar":
        cfg = DataConfig(root=args.data, loader=args.measure, workers=args.workers, val_protocol="test", cutout=8)
        loader = build_search_loaders(cfg, args.batch_size, 0, 1, device, seed=0).train_full
    else:
        cfg = DataConfig(root=args.data, dataset="imagenet", loader=args.measure, workers=args.workers)
        loader = build_eval_loaders(cfg, args.batch_size, 0, 1, device, seed=0).train

    def epoch() -> float:
        start = time.perf_counter()
        for images, _ in loader:
            pass
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    warmup = epoch()
    seconds = [epoch() for _ in range(args.repeats)]
    images = len(loader) * args.batch_size
    rates = [images / s for s in seconds]
    return {
        "loader": args.measure,
        "images_per_epoch": images,
        "warmup_s": warmup,
        "epoch_s": seconds,
        "images_per_s": rates,
        "median_images_per_s": statistics.median(rates),
    }


def run_child(args, backend: str) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--measure",
        backend,
        "--case",
        args.case,
        "--data",
        args.data,
        "--batch-size",
        str(args.batch_size),
        "--repeats",
        str(args.repeats),
        "--workers",
        str(args.workers),
        "--device",
        args.device,
    ]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if out.returncode != 0:
        raise UserError(f"the {backend} measurement failed (exit {out.returncode}); see its error above")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args)))
        return
    with tempfile.TemporaryDirectory(prefix="bench_loaders.") as tmp:
        if args.data is None:
            args.data = str(Path(tmp) / args.case)
            print(f"writing {args.images} synthetic {args.case} images to {args.data}", flush=True)
            (write_synthetic if args.case == "cifar" else write_synthetic_imagenet)(Path(args.data), args.images)
        results = {b: run_child(args, b) for b in BACKENDS}
    ratio = results["ffcv"]["median_images_per_s"] / results["torch"]["median_images_per_s"]
    pipeline = "search training" if args.case == "cifar" else "ImageNet training (with colour jitter)"
    print(
        f"\n{pipeline} pipeline, batch {args.batch_size}, {args.workers} workers, device {args.device}, "
        f"{results['ffcv']['images_per_epoch']} images per epoch, median of {args.repeats} epochs after a warm-up"
    )
    print(f"{'loader':8} {'images/s':>10} {'min':>10} {'max':>10} {'warm-up s':>10}")
    for b, r in results.items():
        print(
            f"{b:8} {r['median_images_per_s']:10.0f} {min(r['images_per_s']):10.0f} {max(r['images_per_s']):10.0f} "
            f"{r['warmup_s']:10.2f}"
        )
    verdict = "meets" if ratio >= TARGET_RATIO else "misses"
    print(f"ratio ffcv/torch: {ratio:.2f}x ({verdict} the {TARGET_RATIO:g}x target)")
    if args.json:
        from nas.core.files import write_json

        write_json(
            args.json,
            {
                "case": args.case,
                "batch_size": args.batch_size,
                "workers": args.workers,
                "device": args.device,
                "cpu_count": os.cpu_count(),
                "repeats": args.repeats,
                "ratio": ratio,
                "target_ratio": TARGET_RATIO,
                "loaders": results,
            },
        )


if __name__ == "__main__":
    run_cli(main)
