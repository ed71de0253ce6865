"""FFCV loaders over the .beton files, with the sample order of LoaderSpec.plan.

FFCV 1.0.2 draws its augmentation randomness from numba's per-thread generators, which it
does not seed: the order of every pass is a function of (seed, epoch), the flips, shifts and
crops are not. FFCV's Loader also sets torch's thread count to its worker count; we put it
back after each call, so that loading does not change the training's threading.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from ffcv.fields.decoders import (CenterCropRGBImageDecoder, IntDecoder, RandomResizedCropRGBImageDecoder,
                                  SimpleRGBImageDecoder)
from ffcv.loader import Loader, OrderOption
from ffcv.pipeline.compiler import Compiler
from ffcv.pipeline.operation import Operation
from ffcv.transforms import RandomHorizontalFlip, RandomTranslate, ToDevice, ToTensor

from .beton import CIFAR_BETONS, IMAGENET_BETONS, check_cifar_beton, check_labels, read_beton_info
from .datasets import CIFAR_SIZE, cifar_layout
from .loader_base import (IMAGENET_RESIZE, IMAGENET_SIZE, BatchFinisher, CifarAugment, EpochLoader, ImageNetAugment,
                          LoaderSpec)


class CutoutClipped(Operation):
    """DARTS cutout on uint8 NHWC batches: a `size` px square centred anywhere in the image,
    clipped at the border, painted `fill` (FFCV's own Cutout keeps the square inside)."""

    def __init__(self, size: int, fill):
        super().__init__()
        self.size = size
        self.fill = np.asarray(fill, dtype=np.uint8)

    def generate_code(self):
        my_range = Compiler.get_iterator()
        half, fill = self.size // 2, self.fill

        def cutout(images, *_):
            n, h, w = images.shape[0], images.shape[1], images.shape[2]
            for i in my_range(n):
                cy, cx = np.random.randint(h), np.random.randint(w)
                images[i, max(cy - half, 0):min(cy + half, h), max(cx - half, 0):min(cx + half, w)] = fill
            return images

        cutout.is_parallel = True
        return cutout

    def declare_state_and_memory(self, previous_state):
        return replace(previous_state, jit_mode=True), None


def image_pipeline(aug) -> list:
    """Decoder and augmentations (uint8 NHWC throughout), the same as the torch path's."""
    if isinstance(aug, ImageNetAugment):
        if aug.train:
            return [RandomResizedCropRGBImageDecoder((IMAGENET_SIZE, IMAGENET_SIZE)), RandomHorizontalFlip()]
        return [CenterCropRGBImageDecoder((IMAGENET_SIZE, IMAGENET_SIZE), ratio=IMAGENET_SIZE / IMAGENET_RESIZE)]
    ops = [SimpleRGBImageDecoder()]
    if aug.flip:
        ops.append(RandomHorizontalFlip())
    if aug.translate:
        ops.append(RandomTranslate(padding=aug.translate, fill=(0, 0, 0)))
    if aug.cutout:
        ops.append(CutoutClipped(aug.cutout, aug.fill))
    return ops


@contextmanager
def _torch_threads_kept():
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class _PlannedLoader(Loader):
    """FFCV's Loader with its traversal order replaced by LoaderSpec.plan."""

    def __init__(self, spec: LoaderSpec, **kwargs):
        self._spec = spec
        super().__init__(**kwargs)

    def next_traversal_order(self):
        return self._spec.plan(self.next_epoch)[0].astype(np.uint64)


class FFCVEpochLoader(EpochLoader):
    backend = "ffcv"

    def __init__(self, spec: LoaderSpec, finisher: BatchFinisher, path: Path, workers: int, device: torch.device):
        super().__init__(spec, finisher)
        to_device = [ToDevice(device, non_blocking=True)] if device.type == "cuda" else []
        with _torch_threads_kept():
            self._loader = _PlannedLoader(
                spec, fname=str(path), batch_size=spec.batch_size, num_workers=max(1, workers),
                order=OrderOption.SEQUENTIAL, drop_last=spec.drop_last, os_cache=True,
                pipelines={"image": image_pipeline(spec.augment) + [ToTensor()] + to_device,
                           "label": [IntDecoder(), ToTensor()] + to_device})

    def _iterate(self, epoch: int) -> Iterator:
        self._loader.next_epoch = epoch
        with _torch_threads_kept():
            batches = iter(self._loader)  # compiles the pipeline on the first pass
        try:
            for images, labels in batches:
                yield self.finish(images, labels)
        finally:
            batches.close()  # an abandoned pass would otherwise keep its reader thread


def _expected_cifar(root: Path) -> str:
    return f"{root}/{CIFAR_BETONS['train']} and {CIFAR_BETONS['test']}, written by scripts/write_datasets.py"


class FFCVCifarSource:
    def __init__(self, root, dataset: str, workers: int, finisher: BatchFinisher, device: torch.device):
        root = Path(root)
        self.num_classes = cifar_layout(dataset).num_classes
        self.paths = {split: root / name for split, name in CIFAR_BETONS.items()}
        self.sizes = {split: check_cifar_beton(path, self.num_classes, CIFAR_SIZE, _expected_cifar(root)).num_samples
                      for split, path in self.paths.items()}
        self.workers, self.finisher, self.device = workers, finisher, device

    def loader(self, spec: LoaderSpec) -> FFCVEpochLoader:
        return FFCVEpochLoader(spec, self.finisher, self.paths[spec.split], self.workers, self.device)


class FFCVImageNetSource:
    def __init__(self, root, workers: int, finisher: BatchFinisher, device: torch.device):
        root = Path(root)
        expected = f"{root}/{IMAGENET_BETONS['train']} and {IMAGENET_BETONS['val']}, written by scripts/write_datasets.py"
        self.paths = {split: root / name for split, name in IMAGENET_BETONS.items()}
        infos = {split: read_beton_info(path, expected) for split, path in self.paths.items()}
        self.num_classes = int(infos["train"].labels.max()) + 1
        check_labels(infos["val"], self.num_classes)
        self.sizes = {split: info.num_samples for split, info in infos.items()}
        self.workers, self.finisher, self.device = workers, finisher, device

    def loader(self, spec: LoaderSpec) -> FFCVEpochLoader:
        return FFCVEpochLoader(spec, self.finisher, self.paths[spec.split], self.workers, self.device)
