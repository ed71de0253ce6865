"""Writing a data root: .beton files for FFCV plus the raw format the torch fallback reads.

A data root holds the record's .beton files (nas/data/datasets.py) and its raw data: for
CIFAR, `cifar_train.beton`, `cifar_test.beton` and the raw pickle directory
(`cifar-10-batches-py/` or `cifar-100-python/`); for ImageNet, `train.beton`, `val.beton` and
the `train/`, `val/` class folders. When the raw data lives elsewhere, the
root gets a symbolic link to it, so both loaders read one directory. Nothing is overwritten
without `overwrite=True`, and a failed write leaves no new file behind.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from nas.core.errors import UserError
from nas.data.datasets import DatasetInfo, cifar_datasets, get_dataset
from nas.data.loaders import ffcv_missing_reason
from nas.data.raw import default_mode, is_digits_dir, list_image_folder, read_cifar, write_cifar10_batches


def _require_ffcv() -> None:
    reason = ffcv_missing_reason()
    if reason:
        raise UserError(f"writing .beton files needs FFCV, which does not import here ({reason})")


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
    tmp = Path(tempfile.mkdtemp(prefix=f".{raw.name}.", suffix=".tmp", dir=out))
    try:
        write_cifar10_batches(tmp, train, test, label_names=[str(d) for d in range(10)])
        print(f"wrote digits ({len(train.labels)} training, {len(test.labels)} test images, 32x32 RGB)")
        if not missing_ffcv:  # read back from the pickles: the code path of real CIFAR-10
            _write_cifar_betons(dataset, _read_cifar_splits(dataset, tmp), out, workers)
        os.chmod(tmp, default_mode(directory=True))  # mkdtemp makes an owner-only directory
        if raw.exists():
            shutil.rmtree(raw)
        os.rename(tmp, raw)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"wrote {raw}/")
    if missing_ffcv:
        print(f"note: FFCV does not import ({missing_ffcv}): no .beton files written; the torch loader "
              f"reads {raw}/", file=sys.stderr)
