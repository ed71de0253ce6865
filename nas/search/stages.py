"""The training stages of a search: build a network from switches, train it for a stage,
and run perturb-val over candidates (docs/method.md, "Training recipe" and "perturb-val").

Phase 1 trains each population model on one rank alone, over the whole training split;
phases 2-4 train data parallel over every rank, or with `--decision_parallel replicate`
every rank computes them whole, as one process would. The same flag, `parallel` (phases
2-4), picks the loader, the DDP wrapper and the step counter.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP

from nas.core import distributed as D
from nas.core.compile import optimizer_options, prepare, release
from nas.core.distributed import DistEnv
from nas.core.engine import Precision, train
from nas.core.errors import UserError
from nas.core.files import append_line
from nas.core.seeding import derive_seed, seed_all
from nas.data.loaders import SearchLoaders
from nas.search.config import SearchConfig
from nas.search.network import SearchNetwork, inherit_weights
from nas.search.perturb import Candidate, PerturbData, PerturbResult, perturb_val
from nas.space.primitives import primitives
from nas.space.switches import Switches

log = logging.getLogger("nas")
PERTURB_PHASES = (1, 3, 4)  # the phases that run perturb-val, in the order of --finetune_extra
DIVERGED = 10  # a stage ending above DIVERGED x ln(classes), the untrained loss, diverged


@dataclass
class StepCounts:
    """Training steps this rank took: population valuation, and the decisions (phases 2-4)."""

    phase1: int = 0
    phases2_4: int = 0

    def add(self, n: int, *, parallel: bool) -> None:
        if parallel:
            self.phases2_4 += n
        else:
            self.phase1 += n


class Trainer:
    def __init__(
        self,
        cfg: SearchConfig,
        env: DistEnv,
        data: SearchLoaders,
        precision: Precision,
        tb,
        stage_log: Optional[Path] = None,
    ):
        self.cfg, self.env, self.data, self.precision, self.tb = cfg, env, data, precision, tb
        self.stage_log = stage_log  # the run's STAGES file: a JSON line per training epoch (the report reads it)
        self.primitives = primitives(cfg.extra_ops, cfg.op_set)
        self.criterion = nn.CrossEntropyLoss().to(env.device)
        self.memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.progress = cfg.progress and env.is_main
        # phases 2-4 split over the ranks (DDP, candidates shared out), or replicated whole on each
        self.split_decisions = cfg.decision_parallel == "ddp" and env.world_size > 1
        self.steps = StepCounts()
        self.perturb_data = PerturbData(
            train=data.train_full,
            val=data.val,
            criterion=self.criterion,
            precision=precision,
            max_eval_steps=1 if cfg.fast else None,
        )

    def build(self, switches: Switches, *, seed: int, previous: Optional[nn.Module] = None) -> SearchNetwork:
        seed_all(seed)  # the same initial weights on every rank (DDP also broadcasts them)
        net = SearchNetwork(
            self.cfg.init_channels,
            self.data.num_classes,
            self.cfg.layers,
            switches,
            primitives=self.primitives,
            off_ops=self.cfg.off_ops,
            image_size=self.data.image_size,
        )
        if previous is not None and self.cfg.inherit_weights:
            inherit_weights(net, previous)
        return net.to(self.env.device, memory_format=self.memory_format)

    def make_optimizer(self, net: nn.Module, lr: float) -> torch.optim.Optimizer:
        return torch.optim.SGD(
            net.parameters(),
            lr,
            momentum=self.cfg.momentum,
            weight_decay=self.cfg.weight_decay,
            **optimizer_options(self.env.device, self.cfg.compile, scaler=self.precision.scaled),
        )

    def train_stage(
        self, net: SearchNetwork, *, epochs: int, lr: float, data_key: int, tag: str, parallel: bool
    ) -> torch.optim.Optimizer:
        """Train `net` for `epochs` with cosine annealing from `lr` to the floor; returns the
        stage's optimizer (perturb-val of phases 1 and 3 fine-tunes with it, at the floor)."""
        optimizer = self.make_optimizer(net, lr)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(epochs, 1), eta_min=self.cfg.learning_rate_min
        )
        parallel_ranks = parallel and self.split_decisions

        # --compile: one compiled or captured network per stage (a stage is ~1,000 steps at the
        # published sizes); perturb-val fine-tunes `net` itself, eagerly unless --compile_perturb.
        def ddp(m):
            return DDP(m, device_ids=[self.env.device] if self.env.device.type == "cuda" else None)

        model = prepare(net, self.cfg.compile, wrap=ddp if parallel_ranks else None)
        loader = self.data.train_shard if parallel_ranks else self.data.train_full
        scaler = self.precision.make_scaler()
        for epoch in range(epochs):
            loader.set_epoch(data_key * 1000 + epoch)
            try:
                res = train(
                    model,
                    loader,
                    optimizer,
                    self.criterion,
                    self.precision,
                    scaler,
                    steps=1 if self.cfg.fast else None,
                    grad_clip=self.cfg.grad_clip or None,
                    log_every=self.cfg.log_every,
                    desc=f"{tag} ep{epoch + 1}/{epochs}",
                    progress=self.progress,
                )
            except torch.OutOfMemoryError:
                per_process = self.cfg.batch_size // self.env.world_size if parallel_ranks else self.cfg.batch_size
                raise UserError(
                    f"out of GPU memory training {tag} with --batch_size {self.cfg.batch_size} "
                    f"({per_process} per process), --init_channels {self.cfg.init_channels}, "
                    f"--layers {self.cfg.layers}: lower the batch size or the channels"
                ) from None
            self.steps.add(res["steps"], parallel=parallel)
            log.info(
                "%s epoch %d/%d lr %.4g train loss %.4f top1 %.2f",
                tag,
                epoch + 1,
                epochs,
                optimizer.param_groups[0]["lr"],
                res["loss"],
                res["top1"],
            )
            if self.stage_log is not None:  # one write per line: ranks append to one file without tearing lines
                append_line(
                    self.stage_log,
                    json.dumps(
                        {
                            "tag": tag,
                            "epoch": epoch + 1,
                            "epochs": epochs,
                            "rank": self.env.rank,
                            "lr": optimizer.param_groups[0]["lr"],
                            "loss": res["loss"],
                            "top1": res["top1"],
                        }
                    ),
                )
            scheduler.step()
        release(model)  # the stage's graphs: its network is done training
        if epochs:
            self._check_not_diverged(res["loss"], tag, lr, reduce=parallel_ranks)
        if parallel_ranks:
            D.broadcast_buffers(net)  # BN statistics: identical networks on every rank
        return optimizer

    def _check_not_diverged(self, loss: float, tag: str, lr: float, *, reduce: bool) -> None:
        """A stage that ends far above an untrained network's loss, ln(classes), diverged: its
        scores would rank noise, so the search stops (every rank alike: the mean over ranks)."""
        if reduce:
            total = D.all_reduce_sum(torch.tensor([loss], dtype=torch.float64, device=self.env.device))
            loss = total.item() / self.env.world_size
        classes = self.data.num_classes
        limit = DIVERGED * math.log(classes)
        if not loss <= limit:  # NaN too
            raise UserError(
                f"the search diverged: stage {tag} ended with training loss {loss:.4g}, above {DIVERGED} x "
                f"ln({classes}) = {limit:.3g} (an untrained network's is {math.log(classes):.3g}), at lr "
                f"{lr:g} (--learning_rate {self.cfg.learning_rate:g}): lower --learning_rate"
            )

    def finetune_steps(self, phase: int) -> int:
        """F + 1 fine-tuning steps in phase 1, 3 or 4 (population valuation, fine selection,
        topology selection; the coarse selection, phase 2, perturbs nothing): the original tests
        its step counter after the step, so it takes one more than F = finetune_steps + the
        phase's finetune_extra."""
        if self.cfg.fast:
            return 1
        return self.cfg.finetune_steps + self.cfg.finetune_extra[PERTURB_PHASES.index(phase)] + 1

    def perturb(
        self,
        net: SearchNetwork,
        optimizer: torch.optim.Optimizer,
        candidates: Sequence[Candidate],
        *,
        phase: int,
        key: tuple,
        parallel: bool,
    ) -> PerturbResult:
        """perturb-val of `candidates`; with `parallel` (phases 2-4) they are split over the ranks
        unless the decisions are replicated."""
        rank, world = (self.env.rank, self.env.world_size) if parallel and self.split_decisions else (0, 1)
        return perturb_val(
            net,
            optimizer,
            candidates,
            self.perturb_data,
            finetune_steps=self.finetune_steps(phase),
            data_epoch=derive_seed(self.cfg.seed, "perturb-data", key) % 10**6,
            seed=derive_seed(self.cfg.seed, "perturb", key),
            rank=rank,
            world=world,
            restore=self.cfg.perturb_restore,
            batches=self.cfg.perturb_batches,
            prepare=(lambda n: prepare(n, self.cfg.compile)) if self.cfg.compile_perturb else None,
            on_steps=lambda n: self.steps.add(n, parallel=parallel),
            random_scores=derive_seed(self.cfg.seed, "random-scores", key) if self.cfg.control else None,
        )
