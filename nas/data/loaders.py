"""Data loaders for the searches and the evaluations, built once per run.

    data = build_search_loaders(DataConfig(root="data/cifar"), 256, rank, world_size, device)
    for images, labels in data.train_full: ...

Two backends read the same data root: FFCV (the record's .beton files, nas/data/datasets.py)
and the torchvision fallback (the record's raw layout: CIFAR pickles or class folders).
`scripts/write_datasets.py` writes both into one root. Loaders yield (images, labels) on
the target device: normalised, NCHW (channels-last in memory on request), in the autocast
dtype of the run's Precision (float32 without one); labels int64.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np
import torch

from nas.core.distributed import available_cores
from nas.core.errors import UserError, install_extra
from nas.data.base import (BatchFinisher, CifarAugment, EpochLoader, ImageNetAugment, LoaderSpec, check_batching,
                           require_batches)
from nas.data.datasets import NORM_CONSTANTS, DatasetInfo, cifar_datasets, dataset_for, get_dataset
from nas.data.raw import ArrayLayout, CIFAR_SIZE

if TYPE_CHECKING:
    from nas.core.engine import Precision

log = logging.getLogger("nas.data.loaders")

LOADERS = ("auto", "ffcv", "torch")
VAL_PROTOCOLS = ("holdout", "test")
# SPEC §3: search training augmentation (the cutout size comes from DataConfig.cutout).
SEARCH_TRANSLATE = 2
# DARTS evaluation: random crop 32 with padding 4 = a random translation by up to 4 px.
EVAL_CROP_PADDING = 4


@dataclass
class DataConfig:
    root: str
    dataset: str = "cifar10"        # a name in the registry (nas/data/datasets.py)
    loader: str = "auto"            # auto: FFCV when it imports and the .beton files exist, else torch
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)  # per process: FFCV threads / DataLoader workers
    val_size: int = 5000            # images held out from the training set (val_protocol 'holdout')
    val_protocol: str = "holdout"   # 'test': measure on the test set (the original protocol)
    split_seed: int = 0
    train_subset: Optional[int] = None  # first N training images after the split (smoke runs)
    cutout: int = 0                 # cutout square in px, 0 = off
    norm_constants: str = "dataset"  # 'original': the original code's constants (datasets.NORM_CONSTANTS)
    image_size: Optional[int] = None  # the side the run expects, None: the data's (checked, not resized)

    def __post_init__(self):
        get_dataset(self.dataset)
        choices = {"loader": LOADERS, "val_protocol": VAL_PROTOCOLS, "norm_constants": NORM_CONSTANTS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise UserError(f"{name} {getattr(self, name)!r}: expected one of {', '.join(allowed)}")
        for name in ("workers", "cutout", "split_seed"):
            if getattr(self, name) < 0:
                raise UserError(f"{name} {getattr(self, name)}: expected a number >= 0")
        if self.val_protocol == "holdout" and self.val_size < 1:
            raise UserError(f"val_size {self.val_size}: expected at least 1 held-out image")
        if self.train_subset is not None and self.train_subset < 1:
            raise UserError(f"train_subset {self.train_subset}: expected a positive number of images")


@dataclass
class SearchLoaders:
    train_full: EpochLoader   # the whole search-training split, for one rank alone
    train_shard: EpochLoader  # this rank's share of it, batch_size // world_size
    val: EpochLoader          # held-out split (or the test set), unsharded, no augmentation
    num_classes: int
    image_size: int
    backend: str


@dataclass
class EvalLoaders:
    train: EpochLoader  # this rank's shard of the training set
    val: EpochLoader    # this rank's shard of the test (ImageNet: val) set; shards differ by at most one image
    num_classes: int
    image_size: int
    backend: str


def ffcv_missing_reason() -> str | None:
    """None when FFCV imports, else why not (one line)."""
    threads = torch.get_num_threads()
    try:
        import ffcv.loader  # noqa: F401
    except Exception as exc:  # FFCV can fail with ImportError or a numba/numpy error
        return f"{type(exc).__name__}: {exc}"
    finally:
        torch.set_num_threads(threads)  # importing FFCV sets torch's thread count to 1
    return None


def choose_backend(cfg: DataConfig, dataset: DatasetInfo) -> str:
    """'ffcv' or 'torch'; with loader='auto', one log line says why the fallback was taken."""
    if cfg.loader == "torch":
        return "torch"
    reason = ffcv_missing_reason()
    if cfg.loader == "ffcv":
        if reason:
            raise UserError(f"loader 'ffcv': FFCV does not import here ({reason}); use the torch loader or {install_extra('ffcv')}")
        return "ffcv"
    if reason:
        log.warning("data loader: torch (FFCV does not import: %s; %s adds it)", reason, install_extra("ffcv"))
        return "torch"
    missing = [Path(cfg.root) / name for name in dataset.betons.values() if not (Path(cfg.root) / name).is_file()]
    if missing:
        log.warning("data loader: torch (no FFCV file %s; scripts/write_datasets.py writes it)", missing[0])
        return "torch"
    log.info("data loader: ffcv (%s)", cfg.root)
    return "ffcv"


def usable_workers(workers: int) -> int:
    """--workers, capped at the cores this process may use (more only queue for them), with one warning."""
    cores = available_cores()
    if workers > cores:
        log.warning("--workers %d: more than the %d cores this process may use; using %d", workers, cores, cores)
        return cores
    return workers


def _open_source(cfg: DataConfig, dataset: DatasetInfo, finisher: BatchFinisher):
    if isinstance(dataset.raw, ArrayLayout):  # the run's config.yaml keeps --dataset, which does not apply
        log.info("data set: %s (%s), %d classes, %d px", dataset.name, Path(cfg.root) / "dataset.yaml",
                 dataset.num_classes, dataset.image_size)
    backend = choose_backend(cfg, dataset)
    workers = usable_workers(cfg.workers)
    if backend == "ffcv":
        from nas.data.backend_ffcv import FFCVSource

        return backend, FFCVSource(cfg.root, dataset, workers, finisher, finisher.device)
    from nas.data.backend_torch import TorchArraySource, TorchCifarSource, TorchImageNetSource

    if isinstance(dataset.raw, ArrayLayout):
        source = TorchArraySource
    else:
        source = TorchCifarSource if dataset.is_cifar else TorchImageNetSource
    return backend, source(cfg.root, dataset, workers, finisher, finisher.device)


def _check_cutout(cfg: DataConfig, dataset: DatasetInfo) -> None:
    if cfg.cutout > dataset.image_size:
        raise UserError(f"cutout {cfg.cutout}: expected at most the {dataset.image_size} px image side")


def holdout_split(num_train: int, val_size: int, split_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training ids, held-out ids), both sorted: a fixed seeded split of the training set."""
    if val_size >= num_train:
        raise UserError(f"val_size {val_size} must be smaller than the {num_train} training images")
    perm = np.random.default_rng(split_seed).permutation(num_train)
    return np.sort(perm[val_size:]), np.sort(perm[:val_size])


def _subset(indices: np.ndarray, train_subset: Optional[int]) -> np.ndarray:
    if train_subset is None:
        return indices
    if train_subset > len(indices):
        raise UserError(f"train_subset {train_subset} is larger than the {len(indices)} training images")
    return indices[:train_subset]


def build_search_loaders(cfg: DataConfig, batch_size: int, rank: int, world_size: int, device, *,
                         channels_last: bool = True, precision: Optional["Precision"] = None,
                         seed: int = 0) -> SearchLoaders:
    """Search data (docs/method.md, "Data"): flip + translate 2 px + cutout `cfg.cutout` px wholly
    inside the image on the training split, the search normalisation; the held-out split (or,
    with val_protocol 'test', the test set) for validation. Batches in `precision`'s dtype."""
    dataset = dataset_for(cfg.root, cfg.dataset)
    if not dataset.searchable:
        raise UserError(f"the searches run on 32x32 data sets ({', '.join(cifar_datasets())}) or on a root written "
                        f"by scripts/write_datasets.py folder, not {cfg.dataset}")
    # the augmentation keeps its proportions at larger sizes (at 32 px: SEARCH_TRANSLATE, cfg.cutout)
    if cfg.image_size is not None and cfg.image_size != dataset.image_size:
        raise UserError(f"--image_size {cfg.image_size}: {cfg.root} holds {dataset.image_size} px images "
                        f"({dataset.name}); write a root at that size with write_datasets.py folder --size {cfg.image_size}")
    scale = max(1, dataset.image_size // CIFAR_SIZE)
    cfg = replace(cfg, cutout=cfg.cutout * scale)
    _check_cutout(cfg, dataset)
    check_batching(batch_size, rank, world_size)
    if batch_size % world_size:
        raise UserError(f"batch size {batch_size} is not a multiple of the world size {world_size}")
    if seed < 0:
        raise UserError(f"seed {seed}: expected a number >= 0")
    norm = dataset.normalisation(search=True, constants=cfg.norm_constants)
    finisher = BatchFinisher(norm, torch.device(device), channels_last=channels_last, precision=precision)
    backend, source = _open_source(cfg, dataset, finisher)
    train_split, test_split = dataset.splits
    if cfg.val_protocol == "holdout":
        train_ids, val_ids = holdout_split(source.sizes[train_split], cfg.val_size, cfg.split_seed)
        val_split = train_split
    else:
        train_ids, val_ids = np.arange(source.sizes[train_split]), np.arange(source.sizes[test_split])
        val_split = test_split
    train_ids = _subset(train_ids, cfg.train_subset)
    aug = CifarAugment(flip=True, translate=SEARCH_TRANSLATE * scale, cutout=cfg.cutout, cutout_inside=True,
                       fill=norm.fill(truncate=cfg.norm_constants == "original"))
    train_full = source.loader(LoaderSpec(train_split, train_ids, batch_size, shuffle=True, drop_last=True, augment=aug,
                                          seed=seed))
    train_shard = source.loader(LoaderSpec(train_split, train_ids, batch_size // world_size, shuffle=True, drop_last=True,
                                           augment=aug, rank=rank, world_size=world_size, seed=seed, even=True))
    val = source.loader(LoaderSpec(val_split, val_ids, batch_size, shuffle=False, drop_last=False,
                                   augment=CifarAugment(), seed=seed))
    require_batches(train_full, "search-training split")
    require_batches(train_shard, "search-training shard")
    return SearchLoaders(train_full, train_shard, val, source.num_classes, dataset.image_size, backend)


def _keeps_last_batch(spec: LoaderSpec) -> bool:
    """False where an epoch's last partial batch would hold a single image per rank: BatchNorm
    in training mode cannot normalise one value per channel (the CIFAR auxiliary head's
    BatchNorm after its 2x2 convolution raises on it; the original's DataParallel run would
    have stopped there), and one image's statistics elsewhere are noise. That batch is dropped,
    with a warning. At batch 128 neither CIFAR (50,000 = 390 x 128 + 80) nor ImageNet
    (1,281,167 = 10,009 x 128 + 15) comes near it."""
    if spec.num_samples % spec.batch_size != 1:
        return True
    log.warning("the last training batch of each epoch would hold 1 image per rank (%d images, batches of %d): "
                "dropped, as BatchNorm cannot train on one image", spec.num_samples, spec.batch_size)
    return False


def build_eval_loaders(cfg: DataConfig, batch_size: int, rank: int, world_size: int, device, *,
                       channels_last: bool = True, precision: Optional["Precision"] = None,
                       seed: int = 0, drop_last: bool = True) -> EvalLoaders:
    """Evaluation data (docs/method.md, "Evaluation"), `batch_size` per rank. CIFAR layouts:
    random crop 32 pad 4 + flip + DARTS cutout `cfg.cutout` px; class folders (ImageNet):
    random-resized-crop + flip + colour jitter, validation resize + centre crop. Validation is
    the record's validation split; val_size and val_protocol do not apply. Without `drop_last`
    each epoch ends with its partial training batch, as the original's loaders did, unless that
    batch would hold one image per rank (see _keeps_last_batch)."""
    check_batching(batch_size, rank, world_size)
    if seed < 0:
        raise UserError(f"seed {seed}: expected a number >= 0")
    dataset = dataset_for(cfg.root, cfg.dataset)
    _check_cutout(cfg, dataset)
    norm = dataset.normalisation(search=False, constants=cfg.norm_constants)
    finisher = BatchFinisher(norm, torch.device(device), channels_last=channels_last, precision=precision)
    backend, source = _open_source(cfg, dataset, finisher)
    if dataset.is_cifar:
        train_aug = CifarAugment(flip=True, translate=EVAL_CROP_PADDING, cutout=cfg.cutout, fill=norm.fill())
        val_aug = CifarAugment()
    else:
        train_aug = ImageNetAugment(True, dataset.image_size, dataset.resize)
        val_aug = ImageNetAugment(False, dataset.image_size, dataset.resize)
    train_split, val_split = dataset.splits
    train_ids = _subset(np.arange(source.sizes[train_split]), cfg.train_subset)
    spec = LoaderSpec(train_split, train_ids, batch_size, shuffle=True, drop_last=drop_last, augment=train_aug,
                      rank=rank, world_size=world_size, seed=seed, even=True)
    if not drop_last and not _keeps_last_batch(spec):
        spec = replace(spec, drop_last=True)
    train = source.loader(spec)
    val = source.loader(LoaderSpec(val_split, np.arange(source.sizes[val_split]), batch_size, shuffle=False,
                                   drop_last=False, augment=val_aug, rank=rank, world_size=world_size, seed=seed))
    require_batches(train, "training shard")
    return EvalLoaders(train, val, source.num_classes, dataset.image_size, backend)
