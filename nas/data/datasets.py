"""The data sets, one record each: classes, image size, normalisation, the raw on-disk layout
(whose reader the torch loader and the .beton writer share), the .beton file names and the
split names. Adding a data set is one `register(DatasetInfo(...))`, plus a reader in raw.py only
when its raw format is new; the loaders, the writer and the `--dataset` flags look records
up here and nowhere else spell a data set's constants.

Layouts decide the pipelines: CIFAR pickles (32x32 arrays) get the CIFAR augmentations and
can be searched on; class folders get the ImageNet ones (docs/method.md, "Data" and
"Evaluation").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Union

import numpy as np

from nas.core.errors import UserError
from nas.data.raw import (CIFAR10_PICKLES, CIFAR100_PICKLES, CIFAR_SIZE, CifarLayout, FolderLayout, ImageArrays,
                          digits_rgb32)


@dataclass(frozen=True)
class Normalisation:
    """Per-channel mean and std of the 0..1 pixel scale."""

    mean: tuple
    std: tuple

    def scaled(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) on the 0..255 scale, float32."""
        return (np.float32(255) * np.array(self.mean, np.float32),
                np.float32(255) * np.array(self.std, np.float32))

    def fill(self) -> tuple[int, int, int]:
        """The mean colour as uint8: cutout paints it, so the square is ~0 after normalisation
        (DARTS applies cutout after normalising, with zeros)."""
        return tuple(int(round(255 * m)) for m in self.mean)


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    num_classes: Optional[int]  # None: as many as the training split's class folders
    image_size: int             # side of the network's input
    norm: Normalisation         # the evaluation's (and the search's, unless search_norm)
    raw: Union[CifarLayout, FolderLayout]
    betons: dict                # split name -> .beton file name in the data root
    splits: tuple = ("train", "test")  # (training split, validation split) names
    search_norm: Optional[Normalisation] = None  # the search loader's, where it differs
    resize: Optional[int] = None  # class folders: the validation resize before the centre crop
    # the data ship with the package: () -> (train, test), written by scripts/write_datasets.py
    embedded: Optional[Callable[[], tuple[ImageArrays, ImageArrays]]] = None

    @property
    def val_split(self) -> str:
        return self.splits[1]

    @property
    def is_cifar(self) -> bool:
        """32x32 pickle data: CIFAR augmentations, searchable."""
        return isinstance(self.raw, CifarLayout)

    def normalisation(self, *, search: bool) -> Normalisation:
        return self.search_norm if search and self.search_norm is not None else self.norm


DATASETS: dict[str, DatasetInfo] = {}


def register(dataset: DatasetInfo) -> DatasetInfo:
    DATASETS[dataset.name] = dataset
    return dataset


def get_dataset(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise UserError(f"--dataset {name!r}: expected one of {', '.join(DATASETS)}")
    return DATASETS[name]


def check_class_count(dataset: DatasetInfo, found: int, where) -> int:
    """The number of classes of class-folder data: the record's, which the data must have."""
    if dataset.num_classes is not None and found != dataset.num_classes:
        raise UserError(f"{where} has {found} classes; {dataset.name} has {dataset.num_classes}")
    return found


def cifar_datasets() -> list[str]:
    return [name for name, d in DATASETS.items() if d.is_cifar]


def check_cifar_dataset(name: str) -> None:
    """The searches and the CIFAR evaluation take a CIFAR-layout (32x32) data set."""
    if not get_dataset(name).is_cifar:
        raise UserError(f"--dataset {name}: expected a 32x32 data set, one of {', '.join(cifar_datasets())}")


CIFAR_BETONS = {"train": "cifar_train.beton", "test": "cifar_test.beton"}

# Evaluation: DARTS's constants. Search: the original's search loader's (docs/method.md, "Data").
register(DatasetInfo("cifar10", 10, CIFAR_SIZE,
                 Normalisation((0.49139968, 0.48215827, 0.44653124), (0.24703233, 0.24348505, 0.26158768)),
                 CIFAR10_PICKLES, CIFAR_BETONS,
                 search_norm=Normalisation((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))))
register(DatasetInfo("cifar100", 100, CIFAR_SIZE,
                 Normalisation((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
                 CIFAR100_PICKLES, CIFAR_BETONS,
                 search_norm=Normalisation((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761))))
register(DatasetInfo("imagenet", None, 224, Normalisation((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
                 FolderLayout(), {"train": "train.beton", "val": "val.beton"}, splits=("train", "val"), resize=256))
# scikit-learn's digits at 32x32 grey RGB, in the CIFAR-10 layout; statistics of its training split
register(DatasetInfo("digits", 10, CIFAR_SIZE, Normalisation((0.3087,) * 3, (0.3484,) * 3), CIFAR10_PICKLES, CIFAR_BETONS,
                 embedded=digits_rgb32))
