"""Write a data root for PertNAS: FFCV .beton files plus the raw data the torch loader reads.

  pertnas data cifar10  --src DIR/cifar-10-batches-py --out ROOT
  pertnas data cifar100 --src DIR/cifar-100-python    --out ROOT
  pertnas data imagenet --src DIR (holding train/ and val/) --out ROOT [--max-side 500 --quality 90]
  pertnas data digits   --out ROOT    (the embedded data set, no download)
  pertnas data folder   --src DIR --out ROOT --name NAME [--size 32] [--val-fraction 0.1] [--skip-bad]

CIFAR roots get cifar_train.beton and cifar_test.beton; ImageNet roots train.beton and
val.beton. The torch fallback reads the raw format from the same root: when --src is not
already inside ROOT, ROOT gets a symbolic link to it (ROOT/cifar-10-batches-py,
ROOT/cifar-100-python, or ROOT/train and ROOT/val), so keep the source where it is. Each
file is written under a temporary name and renamed when complete; existing outputs are
kept unless --overwrite is given.
"""

from __future__ import annotations

import argparse
import os

from nas.data.datasets import cifar_datasets, get_dataset

EPILOG = """layout of a data root:
  cifar:    ROOT/cifar_train.beton  ROOT/cifar_test.beton  ROOT/cifar-10-batches-py/ (or cifar-100-python/)
  imagenet: ROOT/train.beton  ROOT/val.beton  ROOT/train/<class>/*.JPEG  ROOT/val/<class>/*.JPEG
  folder:   ROOT/dataset.yaml  ROOT/train.beton  ROOT/val.beton  ROOT/{train,val}_{images,labels}.npy
the raw directories are symbolic links to --src when --src lies elsewhere."""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", required=True, help="data root to write into (created if missing)")
    common.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    common.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="writer processes (default: all cores)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in pickle_datasets():
        raw = get_dataset(name).raw.dirname
        p = sub.add_parser(
            name,
            parents=[common],
            help=f"{name} from the python pickle batches ({raw}/)",
            description=f"{name}: {raw}/ -> ROOT/cifar_train.beton, ROOT/cifar_test.beton "
            f"(raw RGB fields); ROOT/{raw} becomes a link to --src unless --src is it.",
        )
        p.add_argument("--src", required=True, help=f"the {raw} directory")
    p = sub.add_parser(
        "imagenet",
        parents=[common],
        help="ImageNet from train/ and val/ class folders",
        description="ImageNet: SRC/train/<class>/*.JPEG and SRC/val/<class>/*.JPEG -> "
        "ROOT/train.beton, ROOT/val.beton (JPEG fields); ROOT/train and ROOT/val "
        "become links to the folders unless SRC is ROOT.",
    )
    p.add_argument("--src", required=True, help="directory holding train/ and val/")
    p.add_argument("--max-side", type=int, default=500, help="longest image side kept (default 500, as FFCV's example)")
    p.add_argument("--quality", type=int, default=90, help="JPEG quality (default 90, as FFCV's example)")
    sub.add_parser(
        "digits",
        parents=[common],
        help="the embedded data set (scikit-learn's digits, 32x32 RGB)",
        description="scikit-learn's 8x8 digits at 32x32 RGB (1500 training, 297 test images) in the "
        "CIFAR-10 layout: ROOT/cifar-10-batches-py/ (exact pickle format), then "
        "ROOT/cifar_train.beton and ROOT/cifar_test.beton from it (skipped, with a note, "
        "when FFCV does not import).",
    )
    p = sub.add_parser(
        "folder",
        parents=[common],
        help="your own images: class folders of any image files PIL reads",
        description="DIR/<class>/<image> (split per class by --val-fraction, seeded), or "
        "DIR/train/<class>/... and DIR/val/<class>/... when both exist -> ROOT/dataset.yaml "
        "(name, classes, images per split, size, mean/std of the training split), "
        "ROOT/train.beton, ROOT/val.beton and the .npy arrays the torch loader reads. "
        "Any mode (grey, palette, RGBA, 16-bit) becomes RGB; the shorter side is resized "
        "to --size, then centre-cropped. ROOT appears only when the whole write succeeded.",
    )
    p.add_argument("--src", required=True, help="directory of class folders (or of train/ and val/)")
    p.add_argument("--name", required=True, help="the data set's name (in dataset.yaml and the runs' records)")
    p.add_argument(
        "--size",
        type=int,
        default=32,
        help="image side, a multiple of 32 (default 32: the CIFAR pipeline; larger: the ImageNet one)",
    )
    p.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="share of each class held out for validation when DIR has no train/ and val/ (default 0.1)",
    )
    p.add_argument("--skip-bad", action="store_true", help="leave unreadable images out (counted) instead of stopping")
    return parser.parse_args(argv)


def pickle_datasets() -> list[str]:
    """The registered CIFAR-layout data sets read from a --src directory (not embedded)."""
    return [name for name in cifar_datasets() if get_dataset(name).embedded is None]


def main(argv=None) -> None:
    args = parse_args(argv)
    from nas.core.errors import UserError
    from nas.data.writer import write_cifar, write_digits, write_folder, write_imagenet

    if args.workers < 1:
        raise UserError(f"--workers {args.workers}: expected at least 1")
    if args.command == "folder":  # the whole root appears at once: it is made in write_folder
        write_folder(
            args.src,
            args.out,
            name=args.name,
            size=args.size,
            val_fraction=args.val_fraction,
            workers=args.workers,
            skip_bad=args.skip_bad,
            overwrite=args.overwrite,
        )
        return
    try:  # before reading any source: a root that cannot be made fails in one line
        os.makedirs(args.out, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {args.out}: cannot create the data root ({exc.strerror or exc})") from None
    if args.command in pickle_datasets():
        write_cifar(args.command, args.src, args.out, overwrite=args.overwrite, workers=args.workers)
    elif args.command == "imagenet":
        write_imagenet(
            args.src,
            args.out,
            max_side=args.max_side,
            quality=args.quality,
            overwrite=args.overwrite,
            workers=args.workers,
        )
    else:
        write_digits(args.out, overwrite=args.overwrite, workers=args.workers)
