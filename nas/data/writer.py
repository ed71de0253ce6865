"""Writing a data root: .beton files for FFCV plus the raw format the torch fallback reads.

A data root holds the record's .beton files (nas/data/datasets.py) and its raw data: for
CIFAR, `cifar_train.beton`, `cifar_test.beton` and the raw pickle directory
(`cifar-10-batches-py/` or `cifar-100-python/`); for ImageNet, `train.beton`, `val.beton` and
the `train/`, `val/` class folders; for a user's class folders (`write_folder`),
`train.beton`, `val.beton`, the images resized into .npy arrays and `dataset.yaml`. When the
raw data lives elsewhere, the root gets a symbolic link to it, so both loaders read one directory. Nothing is overwritten
without `overwrite=True`, and a failed write leaves no new file behind.
"""
from __future__ import annotations

import multiprocessing
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from nas.core.errors import UserError, install_extra
from nas.core.files import write_yaml
from nas.data.datasets import (DATASET_YAML, FOLDER_BETONS, DatasetInfo, check_folder_size, cifar_datasets,
                               get_dataset)
from nas.data.loaders import ffcv_missing_reason
from nas.data.raw import (CIFAR_SIZE, IMAGE_EXTENSIONS, array_paths, default_mode, forget_partials, is_digits_dir,
                          list_image_folder, load_square, partial_prefix, read_arrays, read_cifar,
                          write_cifar10_batches)


def _require_ffcv() -> None:
    reason = ffcv_missing_reason()
    if reason:
        raise UserError(f"writing .beton files needs FFCV, which does not import here ({reason}): {install_extra('ffcv')}")


def _refuse_existing(paths, overwrite: bool) -> None:
    existing = [p for p in paths if p.exists() or p.is_symlink()]
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise UserError(f"{existing[0]} already exists{more}; pass --overwrite to replace it")


def _same_dir(a: Path, b: Path) -> bool:
    return a.exists() and b.exists() and os.path.samefile(a, b)


def _plan_link(src: Path, link: Path, overwrite: bool) -> bool:
    """Whether `link` must be (re)made to point at `src`; refuses to shadow a real directory."""
    if _same_dir(src, link):  # the raw data is already in the root (or linked there)
        return False
    if link.exists() and not link.is_symlink():
        raise UserError(f"{link} is a directory other than {src}; the torch loader would read it: "
                        f"move it away or write to another --out")
    _refuse_existing([link], overwrite)
    return True


def _link(src: Path, link: Path) -> None:
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    os.symlink(src.resolve(), tmp)
    os.replace(tmp, link)
    print(f"linked {link} -> {src.resolve()} (raw data for the torch loader)")


def _swap_in(new: Path, target: Path) -> None:
    """Put the complete directory `new` in place of `target` by renames only: a kill at any
    moment leaves the old `target`, nothing (a rerun writes it), or the new one; what was moved
    aside is named after this process, and the next write removes it."""
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=partial_prefix(target.name), suffix=".old", dir=target.parent))
        os.rename(target, old / target.name)
        os.rename(new, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(new, target)


def _cifar_dataset(name: str) -> DatasetInfo:
    dataset = get_dataset(name)
    if not dataset.is_cifar:
        raise UserError(f"{name} is not in the CIFAR pickle layout: expected one of {', '.join(cifar_datasets())}")
    return dataset


def write_cifar(name: str, src, out, *, overwrite: bool = False, workers: int = 1) -> None:
    """CIFAR-layout pickle directory `src` -> the record's .beton files in `out` (raw RGB
    fields), and `out`/<raw dirname> linked to `src` unless `src` is already there."""
    dataset = _cifar_dataset(name)
    src, out = Path(src), Path(out)
    splits = _read_cifar_splits(dataset, src)  # check the input before anything else
    _require_ffcv()
    link = out / dataset.raw.dirname
    _refuse_existing([out / name for name in dataset.betons.values()], overwrite)
    needs_link = _plan_link(src, link, overwrite)
    _write_cifar_betons(dataset, splits, out, workers)
    if needs_link:
        _link(src, link)


def _read_cifar_splits(dataset: DatasetInfo, src: Path) -> dict:
    return {split: read_cifar(src, dataset.raw, split, dataset.num_classes) for split in dataset.splits}


def _write_cifar_betons(dataset: DatasetInfo, splits: dict, out: Path, workers: int) -> None:
    from nas.data.beton import ArrayItems, BetonJob, cifar_field, write_betons

    write_betons([BetonJob(out / dataset.betons[s], ArrayItems(a), cifar_field(), dataset.image_size)
                  for s, a in splits.items()], workers)


def write_imagenet(src, out, *, max_side: int, quality: int, overwrite: bool = False, workers: int = 1) -> None:
    """`src`/{train,val}/<class>/*.JPEG -> `out`/{train,val}.beton (JPEG fields, longest side
    at most `max_side`), and `out`/{train,val} linked to the folders unless already there."""
    _require_ffcv()
    from nas.data.beton import BetonJob, FolderItems, imagenet_field, write_betons

    dataset = get_dataset("imagenet")
    src, out = Path(src), Path(out)
    field = imagenet_field(max_side, quality)
    train_split, val_split = dataset.splits
    train = list_image_folder(src / train_split)
    folders = {train_split: train, val_split: list_image_folder(src / val_split, classes=train.classes)}
    _refuse_existing([out / name for name in dataset.betons.values()], overwrite)
    links = {split: _plan_link(src / split, out / split, overwrite) for split in dataset.splits}
    write_betons([BetonJob(out / dataset.betons[split], FolderItems(folder), field, max_side)
                  for split, folder in folders.items()], workers)
    for split, needed in links.items():
        if needed:
            _link(src / split, out / split)


def write_digits(out, *, overwrite: bool = False, workers: int = 1) -> None:
    """The embedded data set in CIFAR-10 layout: `out`/cifar-10-batches-py/ (exact pickle
    format), then the .beton files read from it by the same code as real CIFAR-10. Without
    FFCV only the pickle directory is written (the torch loader reads it)."""
    dataset = get_dataset("digits")
    out = Path(out)
    raw = out / dataset.raw.dirname
    missing_ffcv = ffcv_missing_reason()
    from_ffcv = [] if missing_ffcv else [out / name for name in dataset.betons.values()]
    _refuse_existing(from_ffcv + [raw], overwrite)
    if (raw.exists() or raw.is_symlink()) and (raw.is_symlink() or not is_digits_dir(raw)):
        raise UserError(f"refusing to replace {raw}: it is not a digits set written by this script")
    train, test = dataset.embedded()
    out.mkdir(parents=True, exist_ok=True)
    forget_partials(out, raw.name)
    tmp = Path(tempfile.mkdtemp(prefix=partial_prefix(raw.name), suffix=".tmp", dir=out))
    try:
        write_cifar10_batches(tmp, train, test, label_names=[str(d) for d in range(10)])
        print(f"wrote digits ({len(train.labels)} training, {len(test.labels)} test images, 32x32 RGB)")
        if not missing_ffcv:  # read back from the pickles: the code path of real CIFAR-10
            _write_cifar_betons(dataset, _read_cifar_splits(dataset, tmp), out, workers)
        os.chmod(tmp, default_mode(directory=True))  # mkdtemp makes an owner-only directory
        _swap_in(tmp, raw)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"wrote {raw}/")
    if missing_ffcv:
        print(f"note: FFCV does not import ({missing_ffcv}): no .beton files written ({install_extra('ffcv')} "
              f"adds them); the torch loader reads {raw}/", file=sys.stderr)


# ------------------------------------------------------------------ a user's class folders
@dataclass
class FolderPlan:
    """What `write_folder` will read: classes in label order, (path, label) per split, and
    the files it ignores (no image extension)."""
    classes: list
    splits: dict            # split name -> list of (path, label)
    non_images: int


def _class_files(folder: Path) -> tuple[dict, int]:
    """{class name: sorted image paths} of `folder`/<class>/**, and the non-image files seen."""
    classes, non_images = {}, 0
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if not entry.is_dir() or entry.name.startswith("."):
            non_images += entry.is_file()
            continue
        paths = []
        for root, dirs, files in os.walk(entry.path, followlinks=True):
            dirs.sort()
            for f in sorted(files):
                if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith("."):
                    paths.append(os.path.join(root, f))
                else:
                    non_images += 1
        classes[entry.name] = paths
    return classes, non_images


def _check_classes(folder: Path, classes: dict) -> None:
    if not classes:
        raise UserError(f"{folder} has no class sub-folders (expected {folder}/<class>/<image>)")
    empty = [c for c, paths in classes.items() if not paths]
    if empty:
        raise UserError(f"class folder {folder / empty[0]} holds no images"
                        f"{f' (and {len(empty) - 1} more)' if len(empty) > 1 else ''}")
    if len(classes) < 2:
        raise UserError(f"{folder} has a single class ({next(iter(classes))}); classification needs 2 or more")


def plan_folder(src, val_fraction: float, seed: int = 0) -> FolderPlan:
    """`src`/train/<class>/ and `src`/val/<class>/ when both exist, else `src`/<class>/ split
    per class: a seeded `val_fraction` of each class (at least one image) for validation."""
    src = Path(src)
    if not src.is_dir():
        raise UserError(f"--src {src}: no such directory (expected {src}/<class>/<image>)")
    if (src / "train").is_dir() and (src / "val").is_dir():
        train, non_train = _class_files(src / "train")
        val, non_val = _class_files(src / "val")
        _check_classes(src / "train", train)
        unknown = sorted(set(val) - set(train))
        if unknown:
            raise UserError(f"{src / 'val' / unknown[0]} is a class that {src / 'train'} lacks")
        empty = [c for c, paths in val.items() if not paths]
        if empty:
            raise UserError(f"class folder {src / 'val' / empty[0]} holds no images")
        if not val:
            raise UserError(f"{src / 'val'} has no class sub-folders (expected {src / 'val'}/<class>/<image>)")
        classes = list(train)
        index = {c: i for i, c in enumerate(classes)}
        splits = {split: [(p, index[c]) for c, paths in found.items() for p in paths]
                  for split, found in (("train", train), ("val", val))}
        return FolderPlan(classes, splits, non_train + non_val)
    if not 0 < val_fraction < 1:
        raise UserError(f"--val-fraction {val_fraction}: expected a fraction between 0 and 1")
    found, non_images = _class_files(src)
    _check_classes(src, found)
    splits = {"train": [], "val": []}
    for label, (name, paths) in enumerate(found.items()):
        if len(paths) < 2:
            raise UserError(f"class folder {src / name} holds {len(paths)} image; a train/val split needs 2 or more "
                            f"(or give {src}/train/ and {src}/val/)")
        n_val = min(len(paths) - 1, max(1, round(val_fraction * len(paths))))
        order = np.random.default_rng([seed, label]).permutation(len(paths))
        is_val = np.zeros(len(paths), bool)
        is_val[order[:n_val]] = True
        for path, held in zip(paths, is_val):
            splits["val" if held else "train"].append((path, label))
    return FolderPlan(list(found), splits, non_images)


def _decode(job) -> tuple:
    path, size = job
    try:
        return load_square(path, size), None
    except UserError as exc:
        return None, str(exc)


def _decode_split(items: list, size: int, dest: Path, workers: int, skip_bad: bool, stats: Optional[list]):
    """Decode `items` into `dest` (an .npy of N x size x size x 3, written as the images come);
    returns (labels, the bad files). `stats` (3 sums, 3 sums of squares) gathers the pixels."""
    images = np.lib.format.open_memmap(dest, mode="w+", dtype=np.uint8, shape=(len(items), size, size, 3))
    labels, bad, n = [], [], 0
    jobs = [(p, size) for p, _ in items]
    pool = multiprocessing.get_context("fork").Pool(workers) if workers > 1 else None
    try:
        results = pool.imap(_decode, jobs, chunksize=16) if pool else map(_decode, jobs)
        for (path, label), (image, error) in zip(items, results):
            if error is not None:
                if not skip_bad:
                    raise UserError(f"{error}; nothing was written (--skip-bad leaves such files out)")
                bad.append(path)
                continue
            images[n] = image
            labels.append(label)
            n += 1
            if stats is not None:
                pixels = image.reshape(-1, 3).astype(np.float64) / 255
                stats[0] += pixels.sum(0)
                stats[1] += (pixels ** 2).sum(0)
                stats[2] += len(pixels)
    finally:
        if pool is not None:
            pool.terminate()
    images.flush()
    del images
    if bad:  # keep the good ones only: rewrite the file at its final length
        full = np.load(dest, mmap_mode="r")
        kept = np.lib.format.open_memmap(f"{dest}.part", mode="w+", dtype=np.uint8, shape=(n, size, size, 3))
        kept[:] = full[:n]
        kept.flush()
        del kept, full
        os.replace(f"{dest}.part", dest)
    return np.asarray(labels, dtype=np.int64), bad


def _check_out(out: Path, overwrite: bool) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise UserError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise UserError(f"--out {out} already exists; pass --overwrite to replace it")
        if not (out / DATASET_YAML).is_file():
            raise UserError(f"refusing to replace {out}: it holds no {DATASET_YAML}, so it is not a root written by "
                            f"write_datasets.py folder")


def write_folder(src, out, *, name: str, size: int = CIFAR_SIZE, val_fraction: float = 0.1, workers: int = 1,
                 skip_bad: bool = False, overwrite: bool = False, seed: int = 0) -> dict:
    """A user's class folders -> the data root `out`: <split>_images.npy and <split>_labels.npy
    (what the torch loader reads), train.beton and val.beton (when FFCV imports) and
    dataset.yaml. Everything is written into a hidden directory beside `out`, renamed to
    `out` once complete: a failed or interrupted write leaves nothing behind. Returns the
    dataset.yaml contents."""
    src, out = Path(src), Path(out)
    if not name or not name.strip() or "\n" in name:
        raise UserError(f"--name {name!r}: expected a non-empty one-line name")
    check_folder_size(size, "--size")
    if workers < 1:
        raise UserError(f"--workers {workers}: expected at least 1")
    _check_out(out, overwrite)
    plan = plan_folder(src, val_fraction, seed)
    missing_ffcv = ffcv_missing_reason()
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        forget_partials(parent, out.name)
        tmp = Path(tempfile.mkdtemp(prefix=partial_prefix(out.name), suffix=".tmp", dir=parent))
    except OSError as exc:
        raise UserError(f"--out {out}: cannot write in {parent} ({exc.strerror or exc})") from None
    try:
        stats = [np.zeros(3), np.zeros(3), 0]
        counts, bad = {}, []
        for split, items in plan.splits.items():
            print(f"reading {len(items)} {split} images of {len(plan.classes)} classes at {size}x{size}", flush=True)
            labels, split_bad = _decode_split(items, size, array_paths(tmp, split)[0], workers, skip_bad,
                                              stats if split == "train" else None)
            bad += split_bad
            missing = sorted(set(range(len(plan.classes))) - set(labels.tolist())) if split == "train" else []
            if len(labels) == 0 or missing:
                what = f"class {plan.classes[missing[0]]}" if missing else f"the {split} split"
                raise UserError(f"{what} has no readable image left after --skip-bad left out {len(bad)} files")
            np.save(array_paths(tmp, split)[1], labels)
            counts[split] = int(len(labels))
        mean = stats[0] / stats[2]
        std = np.sqrt(np.maximum(stats[1] / stats[2] - mean ** 2, 0))
        meta = {"name": name, "image_size": size, "classes": plan.classes, "images": counts,
                "mean": [round(float(v), 6) for v in mean], "std": [round(float(max(v, 1e-6)), 6) for v in std],
                "source": str(src.resolve()), "ignored_non_images": plan.non_images, "skipped_bad": len(bad)}
        if not missing_ffcv:
            from nas.data.beton import ArrayItems, BetonJob, cifar_field, write_betons

            write_betons([BetonJob(tmp / FOLDER_BETONS[split],
                                   ArrayItems(read_arrays(tmp, split, len(plan.classes), size)), cifar_field(), size)
                          for split in plan.splits], workers)
        write_yaml(tmp / DATASET_YAML, meta)
        os.chmod(tmp, default_mode(directory=True))  # mkdtemp makes an owner-only directory
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"wrote {out}: {name}, {len(plan.classes)} classes, {counts['train']} training and {counts['val']} "
          f"validation images at {size}x{size}; ignored {plan.non_images} non-image files"
          + (f", skipped {len(bad)} unreadable images (first: {bad[0]})" if bad else ""))
    if missing_ffcv:
        print(f"note: FFCV does not import ({missing_ffcv}): no .beton files written ({install_extra('ffcv')} "
              f"adds them); the torch loader reads the .npy arrays", file=sys.stderr)
    return meta
