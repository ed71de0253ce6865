"""Configurations of the two searches. Flag names follow the original scripts
(`--train_path`, `--npop`, `--op_cap`, `--finetune_steps`, ...); dashes work too."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

from nas.core.config import SEED_MAX, Alias, RunOptions, check_cells, option
from nas.core.errors import UserError
from nas.data.datasets import NORM_CONSTANTS, check_cifar_dataset, cifar_datasets
from nas.data.flags import CIFAR100_ALIAS
from nas.space.primitives import OP_SETS, primitives

SCORES = ("perturb-val", "random")


@dataclass
class SearchConfig(RunOptions):
    SECTION: ClassVar[str] = "search"
    # --data: the evaluation scripts' name of the data root, accepted here too
    ALIASES: ClassVar[dict] = {
        "cifar100": CIFAR100_ALIAS,
        "data": Alias(str, "same as --train_path", lambda root: ("train_path", root)),
    }
    save: str = option("runs", "directory under which the run directory search-<note>-<time> is made", runtime=True)
    resume: Optional[str] = option(
        None, "continue the run in this run directory after its last completed decision", runtime=True
    )
    train_path: str = option(
        "data/cifar10",
        "data root: cifar_train.beton + cifar_test.beton, or cifar-10-batches-py/, "
        "or a root with dataset.yaml (write_datasets.py folder; --dataset does not apply)",
        runtime=True,
    )
    dataset: str = option(
        "cifar10",
        f"data set to search on ({', '.join(cifar_datasets())}; nas/data/datasets.py); the data root holds it",
    )
    loader: str = option(
        "auto", "ffcv, torch, or auto (FFCV when installed and .beton files exist)", ("auto", "ffcv", "torch")
    )
    image_size: Optional[int] = option(
        None,
        "image side to search at (default: the data's; a root written by "
        "write_datasets.py folder holds one size, --size when written)",
        low=1,
    )
    val_protocol: str = option(
        "holdout",
        "measure perturbations on a split held out from the training set, or on the test set (the original protocol)",
        ("holdout", "test"),
    )
    norm_constants: str = option(
        "dataset",
        "search normalisation and cutout fill: dataset (each data set's own "
        "statistics, the fill rounded) or original (the original's: CIFAR-10 constants "
        "for every data set, the fill truncated)",
        NORM_CONSTANTS,
    )
    val_size: int = option(5000, "images held out from the training set for validation", low=1)
    split_seed: int = option(0, "seed of the held-out split", low=0, high=SEED_MAX)
    batch_size: int = option(256, "global batch size", low=1)
    learning_rate: float = option(
        0.2176, "base learning rate for a global batch of 256 (scaled linearly with the batch)", above=0
    )
    learning_rate_min: float = option(0.001, "cosine annealing floor within each training stage", low=0)
    weight_decay: float = option(3e-4, "SGD weight decay", low=0)
    grad_clip: float = option(0.0, "gradient-norm clip (0: off, as in the original)", low=0)
    init_channels: int = option(16, "channels of the first cell", low=1)
    layers: int = option(5, "cells in the search network", low=3)
    stage_epochs: int = option(5, "epochs of every 'train a network' stage", low=1)
    finetune_steps: int = option(50, "base fine-tuning steps of perturb-val", low=0)
    finetune_extra: tuple = option(
        (20, 80, 130),
        "steps added to --finetune_steps in phases 1, 3 and 4 (population valuation, fine and topology selection)",
        low=0,
    )
    perturb_restore: str = option(
        "exact",
        "perturb-val restore between candidates: exact (a copy of the trained "
        "weights and optimizer) or accumulate (the original's: weights and BN statistics "
        "carry over from the previous candidate, the optimizer state is restored)",
        ("exact", "accumulate"),
    )
    perturb_batches: str = option(
        "shared",
        "perturb-val fine-tuning batches: shared (the same for every candidate) "
        "or fresh (the first batches of a new seeded shuffle per candidate, as the original)",
        ("shared", "fresh"),
    )
    scores: str = option(
        "perturb-val",
        "what decides: perturb-val (the method) or random (a control: the same pipeline, networks, steps "
        "and cost, every perturb-val score replaced by a draw from the run seed, so each decision is a "
        "random choice among the same candidates)",
        SCORES,
    )
    topology_candidates: str = option(
        "node",
        "perturb-val before a topology decision: the node's own edges, or all "
        "14 edges in index order (the original, dropped edges included)",
        ("node", "all"),
    )
    decision_parallel: str = option(
        "ddp",
        "phases 2-4 on several processes: ddp (the batch split over the ranks, "
        "perturb-val candidates split too) or replicate (every rank computes the whole "
        "chain with the whole batch, as one process; rank 0's decisions are taken)",
        ("ddp", "replicate"),
    )
    off_ops: str = option(
        "skip",
        "a switched-off operation during perturb-val: skip (not computed) or zero "
        "(computed and multiplied by 0, as the original: weight decay, momentum and BN "
        "statistics still move it)",
        ("skip", "zero"),
    )
    op_set: str = option(
        "darts",
        "candidate operation slots: darts (the 7 of DARTS / NAS-Bench-301) or original "
        "(the original's 9 slots in its order: sep_conv_7x7 and dil_conv_5x5 twice)",
        OP_SETS,
    )
    extra_ops: bool = option(False, "also search sep_conv_7x7 (--op_set darts)")
    inherit_weights: bool = option(False, "start a rebuilt network from the surviving operations' weights")
    # fp32 (TF32 convolutions) measured faster than fp16 autocast for these launch-bound 32-px
    # networks on an H100 and on the CPU (README, benchmarks); --amp fp16 is the original recipe.
    amp: str = option(
        "off",
        "mixed precision: off (fp32), fp16 (+GradScaler, CUDA), bf16, auto (fp16 on CUDA)",
        ("auto", "fp16", "bf16", "off"),
    )
    # Off until a GPU run of scripts/gpu_smoke.sh measures a whole search faster with a mode
    # (README, benchmarks); on the CPU inductor's compile time outweighs a tiny search's steps.
    compile: str = option(
        "off",
        "training stages: off (eager), graphs (CUDA graphs, recaptured when the network "
        "changes) or inductor (torch.compile)",
        ("off", "graphs", "inductor"),
        runtime=True,
    )
    compile_perturb: bool = option(
        False,
        "also capture each perturb-val candidate's fine-tuning with --compile graphs (one capture per candidate)",
        runtime=True,
    )
    # a chain of discrete decisions amplifies any difference of the kernels' numerics
    deterministic: bool = option(
        True,
        "deterministic CUDA kernels (cuDNN autotuner off, deterministic algorithms): one seed, one result on a GPU",
        runtime=True,
    )
    fast: bool = option(False, "one batch per training epoch and evaluation, one fine-tuning step (debugging)")
    log_every: int = option(50, "log a line every this many training steps", runtime=True, low=1)

    @property
    def control(self) -> bool:
        """A control run (--scores random): its decisions are random choices, not the method's."""
        return self.scores == "random"

    @property
    def scores_label(self) -> str:
        """How logs name the scores that decide: a control's say so wherever they are shown."""
        return "random scores (control, not perturb-val)" if self.control else "scores"

    @property
    def scaled_lr(self) -> float:
        return self.learning_rate * self.batch_size / 256

    def check(self) -> None:
        """Rules between options, checked before anything runs (a late failure strands phase 1);
        --val_size against the data root's size is checked when the data is opened, also before."""
        super().check()
        check_cifar_dataset(self.dataset)
        check_cells(self.init_channels, self.channels_last)
        if self.extra_ops and self.op_set != "darts":
            raise UserError(
                f"--extra_ops with --op_set {self.op_set}: expected --op_set darts (the original's "
                f"slots hold sep_conv_7x7 already)"
            )
        if len(self.finetune_extra) != 3:
            raise UserError(
                f"--finetune_extra {' '.join(map(str, self.finetune_extra))}: expected 3 values "
                f"(the steps added in phases 1, 3 and 4)"
            )


@dataclass
class EvolutionaryConfig(SearchConfig):
    SECTION: ClassVar[str] = "evolutionary"
    npop: int = option(4, "population size (a multiple of the number of processes)", low=1)
    op_cap: int = option(1, "operations per edge of each population model", low=1)
    population_seed: str = option(
        "independent",
        "seeds of the population models' (model, edge) steps: independent (each model its own "
        "weights, batches and fine-tuning) or shared (one seed per edge for every model, as the "
        "original, whose ranks all seeded torch and NumPy with --seed); the initial switches differ either way",
        ("independent", "shared"),
    )
    # auto: on 2 CPU cores two one-thread processes valued the tiny population 1.7x faster than
    # one two-thread process (README, benchmarks); on a GPU one until bench_phase1.py measures it
    phase1_procs: int = option(
        0,
        "processes per rank that value its population models at once on its device "
        "(phase 1; a model's scores do not depend on its process). 0: auto, on the CPU "
        "one per thread of the process up to its models, on a GPU 1",
        runtime=True,
        low=0,
    )

    def check(self) -> None:
        super().check()
        ops = len(primitives(self.extra_ops, self.op_set))
        if self.op_cap > ops:
            raise UserError(
                f"--op_cap {self.op_cap}: expected at most the {ops} operations of the search space"
                f"{'' if self.extra_ops or self.op_set != 'darts' else ' (8 with --extra_ops)'}"
            )


@dataclass
class SupernetConfig(SearchConfig):
    SECTION: ClassVar[str] = "supernet"
    pretrain_epochs: int = option(20, "epochs of supernet training before the selections", low=0)
