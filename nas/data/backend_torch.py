"""The torchvision fallback: torch DataLoaders over the raw formats (CIFAR pickles held in
memory, ImageNet class folders), with the FFCV path's preprocessing.

Augmentation randomness comes from a per-sample seed that the sampler hands out with each
index (LoaderSpec.plan), so a pass is a function of (seed, epoch) alone: independent of the
number of workers, and identical when a crashed run is resumed. The DataLoader draws its
workers' base seed from a generator of its own, never from torch's global one: the training's
random numbers (drop-path masks) are then the same whatever the workers and wherever a run
was resumed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from nas.data.base import BatchFinisher, CifarAugment, EpochLoader, ImageNetAugment, LoaderSpec
from nas.data.datasets import DatasetInfo, check_class_count
from nas.data.raw import ImageArrays, ImageFolder, list_image_folder, load_rgb, read_arrays, read_cifar


def augment_cifar(image: np.ndarray, seed: int, aug: CifarAugment) -> np.ndarray:
    """Flip, translate, cutout of one HWC uint8 image, parameters cut from the bits of `seed`
    (63 random bits: cheaper per sample than a generator, and enough for five small draws);
    the semantics of backend_ffcv.AugmentImages."""
    h, w = image.shape[:2]
    if aug.flip and seed & 1:
        image = image[:, ::-1]
    if aug.translate:
        span = 2 * aug.translate + 1
        dy, dx = (seed >> 1) % span - aug.translate, (seed >> 9) % span - aug.translate
        shifted = np.zeros_like(image)  # out[r, c] = in[r + dy, c + dx], black outside
        shifted[max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)] = \
            image[max(0, dy):h - max(0, -dy), max(0, dx):w - max(0, -dx)]
        image = shifted
    if aug.cutout:
        if not aug.translate:
            image = image.copy()  # never paint into the shared data set
        if aug.cutout_inside:  # top-left corner such that the square fits
            y0, x0 = (seed >> 17) % (h - aug.cutout + 1), (seed >> 33) % (w - aug.cutout + 1)
            y1, x1 = y0 + aug.cutout, x0 + aug.cutout
        else:
            cy, cx, half = (seed >> 17) % h, (seed >> 33) % w, aug.cutout // 2
            y0, y1, x0, x1 = max(cy - half, 0), min(cy + half, h), max(cx - half, 0), min(cx + half, w)
        image[y0:y1, x0:x1] = aug.fill
    return np.ascontiguousarray(image)


_CHANNELS = np.arange(3)


def to_output(image: np.ndarray, table) -> torch.Tensor:
    """HWC uint8 as a tensor, or normalised float32 through BatchFinisher.table when given."""
    return torch.from_numpy(image if table is None else table[image, _CHANNELS])


class CifarArrayDataset(Dataset):
    """Items are (index, augmentation seed) pairs; returns (HWC tensor, label): uint8, or
    float32 normalised through `norm` (BatchFinisher.table)."""

    def __init__(self, arrays: ImageArrays, aug: CifarAugment, norm=None):
        self.arrays = arrays
        self.aug = aug
        self.norm = norm
        self.augments = aug.flip or aug.translate or aug.cutout

    def __len__(self) -> int:
        return len(self.arrays.labels)

    def __getitem__(self, item):
        index, seed = item
        image = self.arrays.images[index]
        if self.augments:
            image = augment_cifar(image, seed, self.aug)
        return to_output(image, self.norm), int(self.arrays.labels[index])  # collate copies it


class ImageFolderDataset(Dataset):
    """Items are (index, augmentation seed) pairs; returns (224x224x3 tensor, label), uint8 or
    normalised float32 as CifarArrayDataset."""

    def __init__(self, folder: ImageFolder, aug: ImageNetAugment, norm=None):
        from torchvision import transforms as T

        self.folder = folder
        self.labels = folder.labels
        self.train = aug.train
        self.norm = norm
        if aug.train:  # the colour jitter follows on the device (BatchFinisher)
            self.transform = T.Compose([T.RandomResizedCrop(aug.size), T.RandomHorizontalFlip()])
        else:
            self.transform = T.Compose([T.Resize(aug.resize), T.CenterCrop(aug.size)])

    def __len__(self) -> int:
        return len(self.labels)

    def _load(self, index: int) -> np.ndarray:
        return load_rgb(self.folder.paths[index])

    def __getitem__(self, item):
        from PIL import Image

        index, seed = item
        image = Image.fromarray(self._load(index))
        if self.train:
            # torchvision's transforms draw from torch's global generator: seed it per sample,
            # leaving the caller's random state (dropout, drop-path) untouched.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                image = self.transform(image)
        else:
            image = self.transform(image)
        return to_output(np.array(image, dtype=np.uint8), self.norm), int(self.labels[index])


class ArrayImageNetDataset(ImageFolderDataset):
    """The ImageNet pipeline over a folder root's fixed-size arrays (images above 32 px)."""

    def __init__(self, arrays: ImageArrays, aug: ImageNetAugment, norm=None):
        super().__init__(ImageFolder([], arrays.labels, []), aug, norm)
        self.arrays = arrays

    def _load(self, index: int) -> np.ndarray:
        return np.asarray(self.arrays.images[index])


class _PlannedSampler(Sampler):
    """Yields the current pass's (index, seed) pairs, set by the loader before each pass."""

    def __init__(self, num_samples: int):
        self.num_samples = num_samples
        self.items: list = []

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return self.num_samples


class TorchEpochLoader(EpochLoader):
    backend = "torch"

    def __init__(self, spec: LoaderSpec, finisher: BatchFinisher, dataset: Dataset, workers: int,
                 device: torch.device):
        super().__init__(spec, finisher)
        self._sampler = _PlannedSampler(spec.num_samples)
        # Every iterator draws a base seed for the workers (with workers=0 too); the samples'
        # seeds make it irrelevant to the batches, so a fixed generator serves.
        self._loader = DataLoader(dataset, batch_size=spec.batch_size, sampler=self._sampler, num_workers=workers,
                                  pin_memory=device.type == "cuda", drop_last=spec.drop_last,
                                  persistent_workers=workers > 0, generator=torch.Generator().manual_seed(spec.seed))

    def _iterate(self, epoch: int, order: np.ndarray, seeds: np.ndarray) -> Iterator:
        self._sampler.items = list(zip(order.tolist(), seeds.tolist()))
        return iter(self._loader)


class TorchCifarSource:
    """CIFAR pickles under `root`/<raw dirname>/, read once and shared by the run's loaders."""

    def __init__(self, root, dataset: DatasetInfo, workers: int, finisher: BatchFinisher, device: torch.device):
        raw = Path(root) / dataset.raw.dirname
        self.arrays = {split: read_cifar(raw, dataset.raw, split, dataset.num_classes) for split in dataset.splits}
        self.sizes = {split: len(a.labels) for split, a in self.arrays.items()}
        self.num_classes = dataset.num_classes
        self.workers, self.finisher, self.device = workers, finisher, device

    def loader(self, spec: LoaderSpec) -> TorchEpochLoader:
        dataset = CifarArrayDataset(self.arrays[spec.split], spec.augment, self.finisher.loader_table(spec))
        return TorchEpochLoader(spec, self.finisher, dataset, self.workers, self.device)


class TorchImageNetSource:
    """`root`/<split>/<class>/*.JPEG for both splits (labels from the training split's classes)."""

    def __init__(self, root, dataset: DatasetInfo, workers: int, finisher: BatchFinisher, device: torch.device):
        train_split, val_split = dataset.splits
        train = list_image_folder(Path(root) / train_split)
        self.folders = {train_split: train, val_split: list_image_folder(Path(root) / val_split, classes=train.classes)}
        self.sizes = {split: len(f.paths) for split, f in self.folders.items()}
        self.num_classes = check_class_count(dataset, len(train.classes), Path(root) / train_split)
        self.workers, self.finisher, self.device = workers, finisher, device

    def loader(self, spec: LoaderSpec) -> TorchEpochLoader:
        dataset = ImageFolderDataset(self.folders[spec.split], spec.augment, self.finisher.loader_table(spec))
        return TorchEpochLoader(spec, self.finisher, dataset, self.workers, self.device)


class TorchArraySource:
    """A folder root's <split>_images.npy / <split>_labels.npy, memory-mapped: the CIFAR
    pipeline for 32-px images, the ImageNet one above (nas/data/datasets.py)."""

    def __init__(self, root, dataset: DatasetInfo, workers: int, finisher: BatchFinisher, device: torch.device):
        self.arrays = {split: read_arrays(root, split, dataset.num_classes, dataset.image_size)
                       for split in dataset.splits}
        self.sizes = {split: len(a.labels) for split, a in self.arrays.items()}
        self.num_classes = dataset.num_classes
        self.workers, self.finisher, self.device = workers, finisher, device

    def loader(self, spec: LoaderSpec) -> TorchEpochLoader:
        kind = ArrayImageNetDataset if isinstance(spec.augment, ImageNetAugment) else CifarArrayDataset
        dataset = kind(self.arrays[spec.split], spec.augment, self.finisher.loader_table(spec))
        return TorchEpochLoader(spec, self.finisher, dataset, self.workers, self.device)
