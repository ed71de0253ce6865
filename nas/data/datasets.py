"""The data sets, one record each: classes, image size, normalisation, the raw on-disk layout
(whose reader the torch loader and the .beton writer share), the .beton file names and the
split names. Adding a data set is one `register(DatasetInfo(...))`, plus a reader in raw.py only
when its raw format is new; the loaders, the writer and the `--dataset` flags look records
up here and nowhere else spell a data set's constants. A data root written by
`scripts/write_datasets.py folder` describes itself in its dataset.yaml (`root_dataset`): it
needs no record, and `--dataset` does not apply to it.

Layouts decide the pipelines: CIFAR pickles (32x32 arrays) get the CIFAR augmentations and
can be searched on; class folders get the ImageNet ones (docs/method.md, "Data" and
"Evaluation"). Folder roots (fixed-size arrays) can be searched on at their size; they get
the CIFAR augmentations at 32 px and the ImageNet ones above.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
import yaml

from nas.core.errors import UserError, describe_os_error
from nas.core.files import read_yaml
from nas.data.raw import (CIFAR10_PICKLES, CIFAR100_PICKLES, CIFAR_SIZE, ArrayLayout, CifarLayout, FolderLayout,
                          ImageArrays, array_paths, digits_rgb32, is_digits_dir)


@dataclass(frozen=True)
class Normalisation:
    """Per-channel mean and std of the 0..1 pixel scale."""

    mean: tuple
    std: tuple

    def scaled(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) on the 0..255 scale, float32."""
        return (np.float32(255) * np.array(self.mean, np.float32),
                np.float32(255) * np.array(self.std, np.float32))

    def fill(self, *, truncate: bool = False) -> tuple[int, int, int]:
        """The mean colour as uint8: cutout paints it, so the square is ~0 after normalisation
        (DARTS applies cutout after normalising, with zeros). Rounded, or truncated as the
        original's search loader did (`int(mean)`)."""
        return tuple(int(255 * m) if truncate else int(round(255 * m)) for m in self.mean)


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    num_classes: Optional[int]  # None: as many as the training split's class folders
    image_size: int             # side of the network's input
    norm: Normalisation         # the evaluation's (and the search's, unless search_norm)
    raw: Union[CifarLayout, FolderLayout, ArrayLayout]
    betons: dict                # split name -> .beton file name in the data root
    splits: tuple = ("train", "test")  # (training split, validation split) names
    search_norm: Optional[Normalisation] = None  # the search loader's, where it differs
    # --norm_constants original: the original code's constants, where they differ from the above
    original_norm: Optional[Normalisation] = None
    original_search_norm: Optional[Normalisation] = None
    resize: Optional[int] = None  # class folders: the validation resize before the centre crop
    # the data ship with the package: () -> (train, test), written by scripts/write_datasets.py
    embedded: Optional[Callable[[], tuple[ImageArrays, ImageArrays]]] = None

    @property
    def val_split(self) -> str:
        return self.splits[1]

    @property
    def searchable(self) -> bool:
        """Images of one fixed size (CIFAR pickles, folder roots): the searches take them."""
        return isinstance(self.raw, (CifarLayout, ArrayLayout))

    @property
    def is_cifar(self) -> bool:
        """Fixed-size 32x32 data: the CIFAR augmentations and evaluation network."""
        return self.searchable and self.image_size == CIFAR_SIZE

    def normalisation(self, *, search: bool, constants: str = "dataset") -> Normalisation:
        """The search's or the evaluation's normalisation; `constants` 'original': the
        original code's where they differ (NORM_CONSTANTS)."""
        if constants == "original":
            original = self.original_search_norm if search else self.original_norm
            if original is not None:
                return original
        return self.search_norm if search and self.search_norm is not None else self.norm


DATASETS: dict[str, DatasetInfo] = {}


def register(dataset: DatasetInfo) -> DatasetInfo:
    DATASETS[dataset.name] = dataset
    return dataset


def get_dataset(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise UserError(f"--dataset {name!r}: expected one of {', '.join(DATASETS)}")
    return DATASETS[name]


DATASET_YAML = "dataset.yaml"
FOLDER_BETONS = {"train": "train.beton", "val": "val.beton"}
IMAGE_SIZE_STEP = 32  # folder roots' sides: the evaluation networks reduce by 32 (the search stem by 2s)


def check_folder_size(size: int, what: str) -> None:
    if size < IMAGE_SIZE_STEP or size % IMAGE_SIZE_STEP:
        raise UserError(f"{what} {size}: expected a multiple of {IMAGE_SIZE_STEP} (32, 64, 96, 128, ..., 224)")


def root_dataset(root) -> Optional[DatasetInfo]:
    """The record of a data root written by `write_datasets.py folder` (from its dataset.yaml),
    or None for any other root."""
    root = Path(root)
    path = root / DATASET_YAML
    if not path.is_file():
        if array_paths(root, "train")[0].exists():
            raise UserError(f"missing {path}: {root} holds a folder data set's arrays but no description; "
                            f"write it again with scripts/write_datasets.py folder")
        return None
    meta = _read_description(path)
    name = _field(meta, path, "name", lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string")
    size = _field(meta, path, "image_size", lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer")
    classes = _field(meta, path, "classes", _class_list, "a list of 2 or more distinct non-empty strings")
    mean = _field(meta, path, "mean", lambda v: _channels(v, low=0.0), "3 numbers in 0..1, one per RGB channel")
    std = _field(meta, path, "std", lambda v: _channels(v, low=None), "3 numbers in (0, 1], one per RGB channel")
    check_folder_size(size, f"{path}: image_size")
    return DatasetInfo(name, len(classes), size, Normalisation(tuple(map(float, mean)), tuple(map(float, std))),
                       ArrayLayout(), FOLDER_BETONS, splits=("train", "val"), resize=size)  # validation: no zoom


AGAIN = "write the root again with scripts/write_datasets.py folder"


def _read_description(path: Path) -> dict:
    try:
        meta = read_yaml(path)
    except OSError as exc:
        raise UserError(describe_os_error(exc)) from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text ({exc.reason}); {AGAIN}") from None
    except yaml.YAMLError as exc:  # a tag (!!python/...), an alias bomb, a syntax error
        reason = " ".join(str(exc).split("\n")[0].split()) or type(exc).__name__
        raise UserError(f"{path} is not readable YAML: {reason}; {AGAIN}") from None
    if not isinstance(meta, dict):
        raise UserError(f"{path} holds a {type(meta).__name__}, expected a mapping of name, image_size, classes, "
                        f"mean and std; {AGAIN}")
    return meta


def _field(meta: dict, path: Path, key: str, ok: Callable, expected: str):
    if key not in meta:
        raise UserError(f"{path}: no {key}; expected {expected} ({AGAIN})")
    value = meta[key]
    if not ok(value):
        shown = repr(value) if isinstance(value, (str, int, float, bool, type(None))) else type(value).__name__
        raise UserError(f"{path}: {key} {shown[:80]}: expected {expected} ({AGAIN})")
    return value


def _class_list(value) -> bool:
    return (isinstance(value, list) and len(value) >= 2 and all(isinstance(c, str) and c.strip() for c in value)
            and len(set(value)) == len(value))


def _channels(value, low) -> bool:
    """Three finite numbers: in low..1 (mean), or above 0 and at most 1 (std: a 0 would divide by 0)."""
    if not (isinstance(value, list) and len(value) == 3):
        return False
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        return False
    return all((low <= v if low is not None else v > 0) and v <= 1 for v in value)


def dataset_for(root, name: str) -> DatasetInfo:
    """The data set a run reads from `root`: the root's own description, else record `name`."""
    return root_dataset(root) or get_dataset(name)


def check_class_count(dataset: DatasetInfo, found: int, where) -> int:
    """The number of classes of class-folder data: the record's, which the data must have."""
    if dataset.num_classes is not None and found != dataset.num_classes:
        raise UserError(f"{where} has {found} classes; {dataset.name} has {dataset.num_classes}")
    return found


def data_label(name: str, root) -> str:
    """The data set as a person would name it in a log: the embedded digits set in the CIFAR-10
    layout, read with --dataset cifar10 (the layouts agree), is digits, not CIFAR-10."""
    own = root_dataset(root)
    if own is not None:
        return own.name
    dataset = get_dataset(name)
    if name != "digits" and dataset.is_cifar and is_digits_dir(Path(root) / dataset.raw.dirname):
        return f"digits (read as {name})"
    return name


def cifar_datasets() -> list[str]:
    return [name for name, d in DATASETS.items() if d.is_cifar and isinstance(d.raw, CifarLayout)]


def check_cifar_dataset(name: str) -> None:
    """The searches and the CIFAR evaluation take a CIFAR-layout (32x32) data set."""
    if not get_dataset(name).is_cifar:
        raise UserError(f"--dataset {name}: expected a 32x32 data set, one of {', '.join(cifar_datasets())}")


CIFAR_BETONS = {"train": "cifar_train.beton", "test": "cifar_test.beton"}
# `dataset`: each data set's own statistics; `original`: the original code's constants (its
# search loader had no CIFAR-100 branch, its CIFAR-100 evaluation other digits) and its cutout
# fill int(mean) instead of round(mean) (docs/method.md, "Data").
NORM_CONSTANTS = ("dataset", "original")

# Evaluation: CIFAR-10 DARTS's constants, CIFAR-100 DARTS-PT's (the original's, `original_norm`, are
# P-DARTS's; DARTS had no CIFAR-100). Search: the original's search loader's (docs/method.md, "Data").
CIFAR10_SEARCH_NORM = Normalisation((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
register(DatasetInfo("cifar10", 10, CIFAR_SIZE,
                 Normalisation((0.49139968, 0.48215827, 0.44653124), (0.24703233, 0.24348505, 0.26158768)),
                 CIFAR10_PICKLES, CIFAR_BETONS, search_norm=CIFAR10_SEARCH_NORM))
register(DatasetInfo("cifar100", 100, CIFAR_SIZE,
                 Normalisation((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
                 CIFAR100_PICKLES, CIFAR_BETONS,
                 search_norm=Normalisation((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
                 original_norm=Normalisation((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
                 original_search_norm=CIFAR10_SEARCH_NORM))
register(DatasetInfo("imagenet", None, 224, Normalisation((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
                 FolderLayout(), {"train": "train.beton", "val": "val.beton"}, splits=("train", "val"), resize=256))
# scikit-learn's digits at 32x32 grey RGB, in the CIFAR-10 layout; statistics of its training split
register(DatasetInfo("digits", 10, CIFAR_SIZE, Normalisation((0.3087,) * 3, (0.3484,) * 3), CIFAR10_PICKLES, CIFAR_BETONS,
                 embedded=digits_rgb32))
