"""What the FFCV and the torch loaders share: the description of one loader (which samples,
in which order, with which augmentation), the epoch plan, and the last step that turns a
uint8 NHWC batch into the network's input on the target device.

Both backends take their sample order from `LoaderSpec.plan`, so for the same seed and
epoch they yield the same labels in the same order.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator, Optional, Union

import numpy as np
import torch

from nas.core.errors import UserError
from nas.data.datasets import Normalisation
from nas.data.jitter import color_jitter

if TYPE_CHECKING:
    from nas.core.engine import Precision

@dataclass(frozen=True)
class CifarAugment:
    """Random horizontal flip, random translation by up to `translate` px (black fill, as a
    zero-padded random crop), cutout of a `cutout` px square in the mean colour: wholly inside
    the image with `cutout_inside` (the search's, as FFCV's Cutout), else DARTS's (centred
    anywhere, clipped at the border). All off = the plain validation pipeline."""
    flip: bool = False
    translate: int = 0
    cutout: int = 0
    fill: tuple = (0, 0, 0)
    cutout_inside: bool = False


@dataclass(frozen=True)
class ImageNetAugment:
    """train: random-resized-crop `size` + flip (+ colour jitter, which BatchFinisher applies on
    the device for both loaders); else resize `resize`, centre crop `size`."""
    train: bool
    size: int = 224
    resize: int = 256


Augment = Union[CifarAugment, ImageNetAugment]


@dataclass(frozen=True)
class LoaderSpec:
    split: str              # which file of the data set: 'train', 'test' (CIFAR) or 'val' (ImageNet)
    indices: np.ndarray     # sample ids in that file this loader draws from (all ranks together)
    batch_size: int
    shuffle: bool
    drop_last: bool
    augment: Augment
    rank: int = 0
    world_size: int = 1
    seed: int = 0
    # shards of equal size, so that every rank takes the same number of steps (training): cut
    # to the ranks' equal share with drop_last, else padded with the epoch's first samples
    # (torch's DistributedSampler does the same); otherwise every sample once, the shards
    # differing by at most one (validation)
    even: bool = False
    num_samples: int = field(init=False)  # samples this rank yields per epoch

    def __post_init__(self):
        n = len(self.indices)
        if self.world_size > 1:
            if self.even:
                n = n // self.world_size if self.drop_last else -(-n // self.world_size)
            else:
                n = len(range(self.rank, n, self.world_size))
        object.__setattr__(self, "num_samples", n)

    @property
    def jitters(self) -> bool:
        """Colour jitter (ImageNet training): BatchFinisher applies it on the device."""
        return isinstance(self.augment, ImageNetAugment) and self.augment.train

    def num_batches(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return -(-self.num_samples // self.batch_size)

    def plan(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """(sample ids, augmentation seeds) this rank reads in `epoch`, in order. Both are
        functions of (seed, epoch) alone: drawn for all ranks at once, then sharded."""
        order = self.indices
        rng = np.random.default_rng([self.seed, epoch])
        if self.shuffle:
            order = rng.permutation(order)
        seeds = rng.integers(0, 2**63 - 1, size=len(order), dtype=np.int64)
        if self.world_size > 1:
            if self.even:
                total = self.num_samples * self.world_size
                # padded samples repeat their seeds too: the same augmentation on both backends
                order, seeds = np.resize(order, total), np.resize(seeds, total)
            order, seeds = order[self.rank::self.world_size], seeds[self.rank::self.world_size]
        return order, seeds


class BatchFinisher:
    """Turns a loader's NHWC batch into the network's input: NCHW (channels-last in memory on
    request), labels int64. On CUDA the loaders ship uint8 and the normalisation runs on the
    GPU after a non-blocking copy. On the CPU the loader's own workers or threads normalise
    to float32 (`loader_table`): the main thread, which trains, then does no pixel work, and
    on a busy machine torch's thread pool is not fought over. A loader with colour jitter
    (ImageNet training) ships uint8 on every device: the jitter and the normalisation run
    here, on the device, for both loaders. Batches leave in the precision's autocast dtype
    (float32 without one)."""

    def __init__(self, norm: Normalisation, device: torch.device, *, channels_last: bool,
                 precision: Optional["Precision"] = None):
        self.device = device
        mean, std = norm.scaled()
        # value -> normalised value per channel: the CPU loaders (numba and numpy) look pixels
        # up here, so both backends give bit-identical batches.
        self.table = ((np.arange(256, dtype=np.float64)[:, None] - mean) / std).astype(np.float32)
        self._mean = torch.from_numpy(mean).to(device).view(1, 3, 1, 1)
        self._std = torch.from_numpy(std).to(device).view(1, 3, 1, 1)
        self.dtype = precision.dtype if precision is not None and precision.dtype is not None else torch.float32
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def loader_table(self, spec: "LoaderSpec") -> Optional[np.ndarray]:
        """The table a loader normalises with, or None where it ships uint8 pixels."""
        return self.table if self.device.type != "cuda" and not spec.jitters else None

    def __call__(self, images: torch.Tensor, labels: torch.Tensor,
                 jitter_seeds: Optional[np.ndarray] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """`jitter_seeds`: the batch's augmentation seeds (LoaderSpec.plan) where it is jittered."""
        # FFCV reuses its output buffers: the labels are copied out here, the images by the
        # conversion below or by the loader's normalisation, which writes a fresh array.
        labels = labels.to(self.device, non_blocking=True).view(-1).to(torch.int64, copy=True)
        # NHWC permuted to NCHW is channels-last in memory; the arithmetic keeps that layout.
        x = images.to(self.device, non_blocking=True).permute(0, 3, 1, 2)
        if x.dtype == torch.uint8:  # not normalised by the loader
            x = x.float()
            if jitter_seeds is not None:
                x = color_jitter(x.div_(255), jitter_seeds).mul_(255)
            x = x.sub_(self._mean).div_(self._std)
        return x.to(self.dtype).contiguous(memory_format=self.memory_format), labels


class EpochLoader:
    """One pass per iteration. `set_epoch(n)` fixes the order (and, where the backend allows,
    the augmentation) of the next pass; without it, passes count 0, 1, 2, ..."""

    backend = ""

    def __init__(self, spec: LoaderSpec, finisher: BatchFinisher):
        self.spec = spec
        self.finish = finisher
        self.batch_size = spec.batch_size
        self._epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self._epoch = int(epoch)

    def __len__(self) -> int:
        return self.spec.num_batches()

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        epoch, self._epoch = self._epoch, self._epoch + 1
        return self._finished(epoch)

    def _finished(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order, seeds = self.spec.plan(epoch)
        size, jitters = self.batch_size, self.spec.jitters
        for i, (images, labels) in enumerate(self._iterate(epoch, order, seeds)):
            yield self.finish(images, labels, seeds[i * size:(i + 1) * size] if jitters else None)

    def _iterate(self, epoch: int, order: np.ndarray, seeds: np.ndarray) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The backend's raw batches of one pass, in the plan's order."""
        raise NotImplementedError


def check_batching(batch_size: int, rank: int, world_size: int) -> None:
    if world_size < 1 or not 0 <= rank < world_size:
        raise UserError(f"rank {rank} of world size {world_size}: expected 0 <= rank < world size")
    if batch_size < 1:
        raise UserError(f"batch size {batch_size}: expected a positive number")


def require_batches(loader: EpochLoader, what: str) -> None:
    if len(loader) == 0:
        raise UserError(f"the {what} has {loader.spec.num_samples} images per rank, fewer than one batch of "
                        f"{loader.batch_size}: lower the batch size or use more images")

