"""Configurations of the evaluation runs (SPEC §7); defaults are the published runs' settings.
Flag names follow the DARTS evaluation scripts (`--arch`, `--init_channels`, `--auxiliary`,
`--drop_path_prob`, ...); dashes work too."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .config import RUNTIME_KEYS as RUN_KEYS, RunOptions, option

# Keys that may differ when a run is resumed (where and how it runs, not what it computes).
# arch / reduce_arch are compared by the genotypes they name, not by their spelling.
RUNTIME_KEYS = RUN_KEYS | {"data", "loader", "arch", "reduce_arch"}


@dataclass
class EvalConfig(RunOptions):
    arch: str = option("EVAL_BEST_EVOLUTIONARY", "genotype spec: library name, genotype .json/.txt file or search run directory")
    reduce_arch: Optional[str] = option(None, "take the reduction cell from this genotype spec (the paper: the second best run)")
    seed: int = option(0, "run seed (initial weights; each epoch derives its own seed from it)")
    save: str = option("runs", "directory under which the run directory eval-<note>-<time> is made")
    note: str = option("eval", "note in the run directory's name (eval-<note>-<time>)")
    resume: Optional[str] = option(None, "continue the run in this run directory (or from its checkpoints/last.pt)")
    data: str = option("data/cifar10", "data root: FFCV .beton files or the standard on-disk format")
    loader: str = option("auto", "ffcv, torch, or auto (FFCV when installed and .beton files exist)", ("auto", "ffcv", "torch"))
    workers: int = option(8, "data loading workers per process")
    train_subset: Optional[int] = option(None, "train on only this many images (smoke runs)")
    epochs: int = option(600, "training epochs")
    batch_size: int = option(128, "global batch size (split over the processes)")
    learning_rate: float = option(0.025, "initial learning rate")
    lr_scheduler: str = option("cosine", "per-epoch learning-rate schedule", ("cosine", "linear"))
    momentum: float = option(0.9, "SGD momentum")
    weight_decay: float = option(3e-4, "SGD weight decay")
    grad_clip: float = option(5.0, "gradient-norm clip (0: off)")
    label_smooth: float = option(0.0, "label smoothing of the training loss (validation never smooths)")
    init_channels: int = option(36, "channels of the first cell")
    layers: int = option(20, "cells in the network")
    auxiliary: bool = option(True, "auxiliary head after the second reduction cell")
    auxiliary_weight: float = option(0.4, "weight of the auxiliary loss")
    drop_path_prob: float = option(0.3, "drop-path probability reached at the last epoch (ramped linearly from 0)")
    amp: str = option("auto", "mixed precision: auto (fp16 on CUDA, off on the CPU), fp16, bf16, off",
                      ("auto", "fp16", "bf16", "off"))
    channels_last: bool = option(True, "channels-last memory format")
    log_every: int = option(100, "log a line every this many training steps")
    progress: bool = option(True, "progress bar within the epoch")


@dataclass
class CifarEvalConfig(EvalConfig):
    """NetworkCIFAR: 600 epochs, batch 128, lr 0.025 cosine, 36 channels, 20 cells, auxiliary 0.4,
    cutout 16, drop-path 0.3, grad clip 5 (the published CIFAR-10 run)."""

    note: str = option("cifar", "note in the run directory's name")
    cifar100: bool = option(False, "CIFAR-100 instead of CIFAR-10 (the data root holds CIFAR-100)")
    cutout_length: int = option(16, "cutout square side in pixels (0: off)")
    # fp32 (TF32 convolutions) measured faster than fp16 autocast for NetworkCIFAR on an H100
    # (README, benchmarks); --amp fp16 restores the original recipe. ImageNet keeps fp16.
    amp: str = option("off", "mixed precision: off (fp32), fp16 (+GradScaler, CUDA), bf16, auto (fp16 on CUDA)",
                      ("auto", "fp16", "bf16", "off"))


@dataclass
class ImageNetEvalConfig(EvalConfig):
    """NetworkImageNet: 300 epochs, batch 128, lr 0.1 "linear" (+ warm-up above batch 256), label
    smoothing 0.1, wd 3e-5, 48 channels, 14 cells, no auxiliary, no drop-path (the published run)."""

    note: str = option("imagenet", "note in the run directory's name")
    data: str = option("data/imagenet", "data root: FFCV .beton files or train/ and val/ class folders")
    epochs: int = option(300, "training epochs")
    learning_rate: float = option(0.1, "initial learning rate")
    lr_scheduler: str = option("linear", "per-epoch learning-rate schedule", ("cosine", "linear"))
    weight_decay: float = option(3e-5, "SGD weight decay")
    label_smooth: float = option(0.1, "label smoothing of the training loss (validation never smooths)")
    init_channels: int = option(48, "channels of the first cell")
    layers: int = option(14, "cells in the network")
    auxiliary: bool = option(False, "auxiliary head after the second reduction cell")
    drop_path_prob: float = option(0.0, "drop-path probability reached at the last epoch (ramped linearly from 0)")
