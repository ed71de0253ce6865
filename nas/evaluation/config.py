"""Configurations of the evaluation runs (docs/method.md, "Evaluation"); defaults are the published runs' settings.
Flag names follow the DARTS evaluation scripts (`--arch`, `--init_channels`, `--auxiliary`,
`--drop_path_prob`, ...); dashes work too."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

from nas.core.config import SEED_MAX, Alias, RunOptions, check_cells, option
from nas.data.datasets import NORM_CONSTANTS, check_cifar_dataset, cifar_datasets
from nas.data.flags import CIFAR100_ALIAS
from nas.evaluation.schedules import check_schedule


@dataclass
class EvalConfig(RunOptions):
    SECTION: ClassVar[str] = "evaluation"
    # --train_path: the searches' name of the data root, accepted here too
    ALIASES: ClassVar[dict] = {"train_path": Alias(str, "same as --data", lambda root: ("data", root))}
    # arch / reduce_arch are runtime options: a resumed run compares the genotypes they name, not their spelling
    arch: str = option(
        "EVAL_BEST_EVOLUTIONARY",
        "genotype spec: library name, genotype .json/.txt file or search run directory",
        runtime=True,
    )
    reduce_arch: Optional[str] = option(
        None, "take the reduction cell from this genotype spec (the paper: the second best run)", runtime=True
    )
    seed: int = option(0, "run seed (initial weights; each epoch derives its own seed from it)", low=0, high=SEED_MAX)
    save: str = option("runs", "directory under which the run directory eval-<note>-<time> is made", runtime=True)
    note: str = option("eval", "note in the run directory's name (eval-<note>-<time>)", runtime=True)
    resume: Optional[str] = option(
        None, "continue the run in this run directory (or from its checkpoints/last.pt)", runtime=True
    )
    data: str = option(
        "data/cifar10",
        "data root: FFCV .beton files or the standard on-disk format, or a root with "
        "dataset.yaml (write_datasets.py folder; --dataset does not apply)",
        runtime=True,
    )
    loader: str = option(
        "auto",
        "ffcv, torch, or auto (FFCV when installed and .beton files exist)",
        ("auto", "ffcv", "torch"),
        runtime=True,
    )
    epochs: int = option(600, "training epochs", low=1)
    batch_size: int = option(128, "global batch size (split over the processes)", low=1)
    drop_last: bool = option(
        True,
        "drop each epoch's last partial training batch; --no-drop_last keeps it, as the original's "
        "loaders did (CIFAR at batch 128: 391 steps an epoch instead of 390)",
    )
    learning_rate: float = option(0.025, "initial learning rate", above=0)
    lr_scheduler: str = option("cosine", "per-epoch learning-rate schedule", ("cosine", "linear"))
    weight_decay: float = option(3e-4, "SGD weight decay", low=0)
    grad_clip: float = option(5.0, "gradient-norm clip (0: off)", low=0)
    label_smooth: float = option(0.0, "label smoothing of the training loss (validation never smooths)", low=0, high=1)
    init_channels: int = option(36, "channels of the first cell", low=1)
    layers: int = option(20, "cells in the network", low=3)
    auxiliary: bool = option(True, "auxiliary head after the second reduction cell")
    auxiliary_weight: float = option(0.4, "weight of the auxiliary loss", low=0)
    drop_path_prob: float = option(
        0.3, "drop-path probability reached at the last epoch (ramped linearly from 0)", low=0, high=1
    )
    amp: str = option(
        "auto", "mixed precision: auto (fp16 on CUDA, off on the CPU), fp16, bf16, off", ("auto", "fp16", "bf16", "off")
    )
    # Off until a GPU run of scripts/gpu_smoke.sh measures it faster (README, benchmarks).
    compile: str = option(
        "off",
        "training step: off (eager), graphs (CUDA graphs of forward and backward) or inductor (torch.compile)",
        ("off", "graphs", "inductor"),
        runtime=True,
    )
    deterministic: bool = option(
        False,
        "deterministic CUDA kernels (cuDNN autotuner off, deterministic algorithms): exact reruns and resumes "
        "on a GPU, at some speed (off: the fastest kernels)",
        runtime=True,
    )
    log_every: int = option(100, "log a line every this many training steps", runtime=True, low=1)

    def check(self) -> None:
        super().check()
        check_cells(self.init_channels, self.channels_last)
        check_schedule(self.lr_scheduler, self.epochs)


@dataclass
class CifarEvalConfig(EvalConfig):
    """NetworkCIFAR: 600 epochs, batch 128, lr 0.025 cosine, 36 channels, 20 cells, auxiliary 0.4,
    cutout 16, drop-path 0.3, grad clip 5 (the published CIFAR-10 run)."""

    SECTION: ClassVar[str] = "cifar"
    ALIASES: ClassVar[dict] = {**EvalConfig.ALIASES, "cifar100": CIFAR100_ALIAS}

    note: str = option("cifar", "note in the run directory's name", runtime=True)
    dataset: str = option(
        "cifar10", f"data set ({', '.join(cifar_datasets())}; nas/data/datasets.py); the data root holds it"
    )
    cutout_length: int = option(16, "cutout square side in pixels (0: off)", low=0)
    norm_constants: str = option(
        "dataset",
        "normalisation: dataset (CIFAR-10: DARTS's constants; CIFAR-100: DARTS-PT's) or original (the "
        "original's CIFAR-100 constants, P-DARTS's)",
        NORM_CONSTANTS,
    )
    # fp32 (TF32 convolutions) measured faster than fp16 autocast for NetworkCIFAR on an H100
    # (README, benchmarks); --amp fp16 restores the original recipe. ImageNet keeps fp16.
    amp: str = option(
        "off",
        "mixed precision: off (fp32), fp16 (+GradScaler, CUDA), bf16, auto (fp16 on CUDA)",
        ("auto", "fp16", "bf16", "off"),
    )

    def check(self) -> None:
        super().check()
        check_cifar_dataset(self.dataset)


@dataclass
class ImageNetEvalConfig(EvalConfig):
    """NetworkImageNet: 300 epochs, batch 128, lr 0.1 "linear" (+ warm-up above batch 256), label
    smoothing 0.1, wd 3e-5, 48 channels, 14 cells, no auxiliary, no drop-path (the published run)."""

    SECTION: ClassVar[str] = "imagenet"

    note: str = option("imagenet", "note in the run directory's name", runtime=True)
    data: str = option("data/imagenet", "data root: FFCV .beton files or train/ and val/ class folders", runtime=True)
    epochs: int = option(300, "training epochs", low=1)
    learning_rate: float = option(0.1, "initial learning rate", above=0)
    lr_scheduler: str = option("linear", "per-epoch learning-rate schedule", ("cosine", "linear"))
    weight_decay: float = option(3e-5, "SGD weight decay", low=0)
    label_smooth: float = option(0.1, "label smoothing of the training loss (validation never smooths)", low=0, high=1)
    init_channels: int = option(48, "channels of the first cell", low=1)
    layers: int = option(14, "cells in the network", low=3)
    auxiliary: bool = option(False, "auxiliary head after the second reduction cell")
    drop_path_prob: float = option(
        0.0, "drop-path probability reached at the last epoch (ramped linearly from 0)", low=0, high=1
    )
