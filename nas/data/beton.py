"""FFCV .beton files: writing them from the raw data sets, and checking them before loading.

Every .beton holds two fields, `image` (RGBImageField: raw pixels for CIFAR, JPEG for
ImageNet) and `label` (IntField). Importing this module needs FFCV.
"""
from __future__ import annotations

import multiprocessing
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from ffcv.fields import IntField, RGBImageField
from ffcv.reader import Reader
from ffcv.writer import MIN_PAGE_SIZE, DatasetWriter

from nas.data.raw import ImageArrays, ImageFolder, default_mode, forget_partials, load_rgb, partial_prefix
from nas.core.errors import UserError

FIELDS = {"image": RGBImageField, "label": IntField}
# FFCV's own ImageNet example (write_imagenet.sh 500 0.50 90): longest side 500, JPEG quality 90.
IMAGENET_MAX_SIDE = 500
IMAGENET_QUALITY = 90


class ArrayItems:
    """In-memory images (NHWC uint8) as the indexable data set FFCV's writer reads."""

    def __init__(self, arrays: ImageArrays):
        self.arrays = arrays

    def __len__(self) -> int:
        return len(self.arrays.labels)

    def __getitem__(self, i):
        return self.arrays.images[i], int(self.arrays.labels[i])


class FolderItems:
    """Image files decoded in FFCV's writer processes. A file that cannot be decoded is
    flagged in shared memory and replaced by a placeholder, because an exception in a writer
    process would stall FFCV's writer forever; `failures()` names the files afterwards."""

    def __init__(self, folder: ImageFolder):
        self.folder = folder
        self.failed = multiprocessing.RawArray("b", len(folder.paths))

    def __len__(self) -> int:
        return len(self.folder.paths)

    def __getitem__(self, i):
        try:
            image = load_rgb(self.folder.paths[i])
        except UserError:
            self.failed[i] = 1
            image = np.zeros((1, 1, 3), np.uint8)
        return image, int(self.folder.labels[i])

    def failures(self) -> list[str]:
        return [p for p, bad in zip(self.folder.paths, self.failed) if bad]


@dataclass
class BetonJob:
    path: Path
    items: object              # ArrayItems or FolderItems
    image_field: RGBImageField
    max_side: int              # longest image side stored, to size FFCV's pages

    @property
    def page_size(self) -> int:
        # FFCV fails (and its writer stalls) when one image outgrows a page; pages are
        # allocated per writer process, so small pages keep small data sets small.
        need = 4 * 3 * self.max_side ** 2
        return max(MIN_PAGE_SIZE, 1 << (need - 1).bit_length())


def cifar_field() -> RGBImageField:
    return RGBImageField(write_mode="raw")


def imagenet_field(max_side: int = IMAGENET_MAX_SIDE, quality: int = IMAGENET_QUALITY) -> RGBImageField:
    if max_side < 1:
        raise UserError(f"--max-side {max_side}: expected a positive number of pixels")
    if not 1 <= quality <= 100:
        raise UserError(f"--quality {quality}: expected a JPEG quality in 1..100")
    return RGBImageField(write_mode="jpg", max_resolution=max_side, jpeg_quality=quality)


def write_betons(jobs: Sequence[BetonJob], workers: int) -> None:
    """Write every job to a temporary file beside its target, then rename them all: either
    all the files appear or, on any error or interrupt, none (the temporaries are removed)."""
    temps: list[str] = []
    try:
        for job in jobs:
            if len(job.items) == 0:
                raise UserError(f"no images to write into {job.path}")
            job.path.parent.mkdir(parents=True, exist_ok=True)
            forget_partials(job.path.parent, job.path.name)
            fd, tmp = tempfile.mkstemp(prefix=partial_prefix(job.path.name), suffix=".tmp", dir=job.path.parent)
            os.close(fd)
            temps.append(tmp)
            print(f"writing {job.path} ({len(job.items)} images)", flush=True)
            writer = DatasetWriter(tmp, {"image": job.image_field, "label": IntField()}, page_size=job.page_size,
                                   num_workers=max(1, min(workers, len(job.items))))
            writer.from_indexed_dataset(job.items, chunksize=max(1, min(100, len(job.items) // max(workers, 1))))
            bad = job.items.failures() if isinstance(job.items, FolderItems) else []
            if bad:
                more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
                raise UserError(f"{bad[0]} is not a readable image{more}; nothing was written")
        mode = default_mode()
        for job, tmp in zip(jobs, temps):
            os.chmod(tmp, mode)  # mkstemp makes owner-only files
            os.replace(tmp, job.path)
        temps.clear()
    finally:
        for tmp in temps:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass


@dataclass
class BetonInfo:
    path: Path
    num_samples: int
    labels: np.ndarray   # int64, one per sample
    heights: np.ndarray
    widths: np.ndarray


def read_beton_info(path, expected: str) -> BetonInfo:
    """Open a .beton and check it has the image and label fields and at least one sample.
    `expected` describes the layout for the error messages."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"missing {path} (expected {expected})")
    try:
        reader = Reader(str(path))
    except OSError as exc:  # unreadable (permissions, I/O error): the file may well be a .beton
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # FFCV raises assorted errors (AssertionError, ValueError...) on bad files
        raise UserError(f"{path} is not a readable FFCV .beton file ({type(exc).__name__}: {exc})") from None
    fields = {name: type(h) for name, h in reader.handlers.items()}
    if list(fields) != list(FIELDS) or any(fields[k] is not v for k, v in FIELDS.items()):
        got = ", ".join(f"{k} ({v.__name__})" for k, v in fields.items())
        raise UserError(f"{path} has fields {got}; expected image (RGBImageField) and label (IntField)")
    if reader.num_samples == 0:
        raise UserError(f"{path} holds no images")
    image, label = reader.metadata["f0"], reader.metadata["f1"]
    return BetonInfo(path, int(reader.num_samples), np.asarray(label, dtype=np.int64),
                     np.asarray(image["height"]), np.asarray(image["width"]))


def check_cifar_beton(path, num_classes: int, image_size: int, expected: str) -> BetonInfo:
    info = read_beton_info(path, expected)
    bad = (info.heights != image_size) | (info.widths != image_size)
    if bad.any():
        i = int(np.argmax(bad))
        raise UserError(f"{path} holds {info.heights[i]}x{info.widths[i]} images (sample {i}); "
                        f"the CIFAR pipeline expects {image_size}x{image_size}")
    check_labels(info, num_classes)
    return info


def check_labels(info: BetonInfo, num_classes: int) -> None:
    if info.labels.min() < 0 or info.labels.max() >= num_classes:
        bad = int(info.labels.max() if info.labels.max() >= num_classes else info.labels.min())
        raise UserError(f"{info.path} holds label {bad}; expected labels 0..{num_classes - 1}")
