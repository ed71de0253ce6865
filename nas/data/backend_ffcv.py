"""FFCV loaders over the .beton files, with the sample order of LoaderSpec.plan.

FFCV 1.0.2's own augmentations draw from numba's per-thread generators, which nothing seeds.
Ours (AugmentImages) cut every flip, shift and cutout from the sample's seed of
LoaderSpec.plan, with the bits of the torch path (backend_torch.augment_cifar): a pass is a
function of (seed, epoch) alone, and a CIFAR batch is the torch loader's, bit for bit. Only
ImageNet's random-resized crop (FFCV's decoder) stays unseeded. FFCV's Loader also sets
torch's thread count to its worker count; we put it back after each call, so that loading
does not change the training's threading.
"""
from __future__ import annotations

import queue
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import numba
import numpy as np
import torch
from numba import carray, types
from numba.extending import intrinsic
from ffcv.fields.decoders import (CenterCropRGBImageDecoder, IntDecoder, RandomResizedCropRGBImageDecoder,
                                  SimpleRGBImageDecoder)
from ffcv.loader import Loader, OrderOption
from ffcv.pipeline.compiler import Compiler
from ffcv.pipeline.operation import Operation
from ffcv.transforms import ToDevice, ToTensor

from nas.data.base import BatchFinisher, EpochLoader, ImageNetAugment, LoaderSpec
from nas.data.beton import check_cifar_beton, check_labels, read_beton_info
from nas.data.datasets import DatasetInfo, check_class_count


@intrinsic
def _int64_pointer(typingctx, address):
    """The integer `address` as an int64 pointer, inside numba code."""
    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))
    return types.CPointer(types.int64)(types.intp), codegen


class SampleSeeds:
    """Each sample's augmentation seed in the current pass, by sample id. Numba freezes the
    arrays a compiled function captures, so the pipeline reads this one through its address
    (fixed for the loader's life) and sees the seeds written before each pass."""

    def __init__(self, num_samples: int):
        self.array = np.zeros(num_samples, dtype=np.int64)

    def set(self, order: np.ndarray, seeds: np.ndarray) -> None:
        self.array[order] = seeds


class AugmentImages(Operation):
    """One pass over a uint8 NHWC batch: random horizontal flip, random translation by up to
    `translate` px (black outside, as a zero-padded random crop), cutout (a `cutout` px square
    painted `fill`: wholly inside the image with `inside`, as FFCV's Cutout, else DARTS's,
    centred anywhere and clipped at the border), then each value looked up
    in `table` (256 x 3): BatchFinisher.table normalises to float32 (CPU), an identity uint8
    table keeps pixels (CUDA, where the GPU normalises). Every draw is cut from the sample's
    seed in `seeds`, as loader_torch.augment_cifar cuts it. The result is a fresh array, so a
    batch stays valid after FFCV reuses its buffers."""

    def __init__(self, flip: bool, translate: int, cutout: int, fill, table: np.ndarray, seeds: SampleSeeds,
                 inside: bool = False):
        super().__init__()
        self.flip, self.translate, self.cutout, self.inside = bool(flip), int(translate), int(cutout), bool(inside)
        self.fill = np.asarray(fill, dtype=np.int64)
        self.table = table
        self.seeds = seeds  # kept here: the compiled code holds only its address

    def generate_code(self):
        my_range = Compiler.get_iterator()
        do_flip, pad, do_cut, inside = self.flip, self.translate, self.cutout > 0, self.inside
        size, half, span = self.cutout, self.cutout // 2, 2 * self.translate + 1
        fill, table = self.fill, self.table
        address, count = self.seeds.array.ctypes.data, len(self.seeds.array)

        def augment(images, _dst, indices):
            n, h, w, c = images.shape
            seeds = carray(_int64_pointer(address), (count,))
            out = np.empty((n, h, w, c), dtype=table.dtype)
            for i in my_range(n):
                seed = seeds[indices[i]]
                flipped = do_flip and seed & 1 == 1
                dy = (seed >> 1) % span - pad if pad > 0 else 0
                dx = (seed >> 9) % span - pad if pad > 0 else 0
                y0, y1, x0, x1 = 0, 0, 0, 0
                if do_cut and inside:
                    y0, x0 = (seed >> 17) % (h - size + 1), (seed >> 33) % (w - size + 1)
                    y1, x1 = y0 + size, x0 + size
                elif do_cut:
                    cy, cx = (seed >> 17) % h, (seed >> 33) % w
                    y0, y1, x0, x1 = max(cy - half, 0), min(cy + half, h), max(cx - half, 0), min(cx + half, w)
                for y in range(h):
                    sy = y + dy
                    for x in range(w):
                        sx = x + dx
                        if y0 <= y < y1 and x0 <= x < x1:
                            for k in range(c):
                                out[i, y, x, k] = table[fill[k], k]
                        elif 0 <= sy < h and 0 <= sx < w:
                            if flipped:
                                sx = w - 1 - sx
                            for k in range(c):
                                out[i, y, x, k] = table[images[i, sy, sx, k], k]
                        else:
                            for k in range(c):
                                out[i, y, x, k] = table[0, k]
            return out

        augment.is_parallel = True
        augment.with_indices = True  # FFCV hands the batch's sample ids
        return augment

    def declare_state_and_memory(self, previous_state):
        return replace(previous_state, jit_mode=True, dtype=self.table.dtype), None


IDENTITY_TABLE = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)


def image_pipeline(aug, table, seeds: SampleSeeds) -> list:
    """Decoder, augmentation and (with `table`, on the CPU) normalisation: NHWC batches with
    the torch path's preprocessing."""
    if isinstance(aug, ImageNetAugment):  # the colour jitter follows on the device (BatchFinisher)
        if aug.train:
            ops = [RandomResizedCropRGBImageDecoder((aug.size, aug.size))]
        else:
            ops = [CenterCropRGBImageDecoder((aug.size, aug.size), ratio=aug.size / aug.resize)]
        if table is not None or aug.train:
            ops.append(AugmentImages(aug.train, 0, 0, (0, 0, 0), IDENTITY_TABLE if table is None else table, seeds))
        return ops
    ops = [SimpleRGBImageDecoder()]
    if table is not None or aug.flip or aug.translate or aug.cutout:
        ops.append(AugmentImages(aug.flip, aug.translate, aug.cutout, aug.fill,
                                 IDENTITY_TABLE if table is None else table, seeds, inside=aug.cutout_inside))
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

    def __init__(self, spec: LoaderSpec, finisher: BatchFinisher, path: Path, workers: int, device: torch.device,
                 num_samples: int):
        super().__init__(spec, finisher)
        self._seeds = SampleSeeds(num_samples)
        to_device = [ToDevice(device, non_blocking=True)] if device.type == "cuda" else []
        table = finisher.loader_table(spec)
        # FFCV's workers are numba threads, at most numba's pool size (the cores by default).
        threads = min(max(1, workers), numba.config.NUMBA_NUM_THREADS)
        with _torch_threads_kept():
            self._loader = _PlannedLoader(
                spec, fname=str(path), batch_size=spec.batch_size, num_workers=threads,
                order=OrderOption.SEQUENTIAL, drop_last=spec.drop_last, os_cache=True,
                pipelines={"image": image_pipeline(spec.augment, table, self._seeds) + [ToTensor()] + to_device,
                           "label": [IntDecoder(), ToTensor()] + to_device})

    def _iterate(self, epoch: int, order: np.ndarray, seeds: np.ndarray) -> Iterator:
        self._loader.next_epoch = epoch  # the loader takes the same plan (next_traversal_order)
        self._seeds.set(order, seeds)
        with _torch_threads_kept():
            batches = iter(self._loader)  # compiles the pipeline on the first pass
        try:
            yield from batches
        finally:
            _stop(batches)


def _stop(batches) -> None:
    """End a pass's reader thread (FFCV's EpochIterator) and wait for it. FFCV's close only
    asks: an abandoned pass's thread would go on decoding, and one still in numba code when
    Python exits aborts the process ("terminate called without an active exception")."""
    batches.iter_ixes = iter(())  # the batch it is making is its last; then it queues the end
    while batches.is_alive():
        try:  # make room for what it queues
            batches.output_queue.get_nowait()
        except queue.Empty:
            batches.join(0.01)
    batches.close()


def _expected(root: Path, dataset: DatasetInfo) -> str:
    return f"{' and '.join(str(root / n) for n in dataset.betons.values())}, written by scripts/write_datasets.py"


class FFCVSource:
    """The .beton files of a data root, one per split; 32x32 images with the record's labels
    for CIFAR-layout data sets, the training split's labels deciding the classes otherwise."""

    def __init__(self, root, dataset: DatasetInfo, workers: int, finisher: BatchFinisher, device: torch.device):
        root = Path(root)
        expected = _expected(root, dataset)
        self.paths = {split: root / dataset.betons[split] for split in dataset.splits}
        if dataset.searchable:  # fixed-size images (CIFAR, folder roots)
            infos = {split: check_cifar_beton(path, dataset.num_classes, dataset.image_size, expected)
                     for split, path in self.paths.items()}
            self.num_classes = dataset.num_classes
        else:
            infos = {split: read_beton_info(path, expected) for split, path in self.paths.items()}
            train_split, val_split = dataset.splits
            self.num_classes = check_class_count(dataset, int(infos[train_split].labels.max()) + 1,
                                                 self.paths[train_split])
            check_labels(infos[val_split], self.num_classes)
        self.sizes = {split: info.num_samples for split, info in infos.items()}
        self.workers, self.finisher, self.device = workers, finisher, device

    def loader(self, spec: LoaderSpec) -> FFCVEpochLoader:
        return FFCVEpochLoader(spec, self.finisher, self.paths[spec.split], self.workers, self.device,
                               self.sizes[spec.split])
