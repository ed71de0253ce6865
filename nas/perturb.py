"""perturb-val (SPEC §4): how much does the trained network need a candidate?

For each candidate (an operation of an edge, or a whole edge): restore the trained
snapshot of weights and optimizer, switch the candidate off (it is then not computed),
fine-tune for F steps, and score acc_after - acc_before on the validation data.
Every candidate sees the same fine-tuning batches, so the scores do not depend on which
rank computed them; candidates are split over the ranks and the scores gathered.
"""
from __future__ import annotations

import copy
import itertools
import logging
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch
import torch.nn as nn

from . import distributed as D
from .engine import Precision, cycle, evaluate, train
from .search_model import SearchNetwork

log = logging.getLogger("nas")

# A candidate: (edge, op) switches one operation off; (edge, None) the whole edge.
Candidate = tuple[int, Optional[str]]


@dataclass
class PerturbData:
    train: object            # unsharded training loader, read by one rank alone
    val: object              # validation loader (held-out split by default)
    criterion: nn.Module
    precision: Precision
    max_eval_steps: Optional[int] = None  # --fast: one batch


@dataclass
class PerturbResult:
    scores: dict           # candidate -> acc_after - acc_before (% points)
    acc_before: float      # validation top-1 (%) of the trained network


class Snapshot:
    """An exact, independent copy of a model's and an optimizer's state."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer):
        self.model_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.optim_state = copy.deepcopy(optimizer.state_dict())

    def restore(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        model.load_state_dict(self.model_state)
        # deepcopy: load_state_dict would otherwise alias our momentum buffers, and the
        # next fine-tuning would silently change the snapshot.
        optimizer.load_state_dict(copy.deepcopy(self.optim_state))


def perturb_val(net: SearchNetwork, optimizer: torch.optim.Optimizer, candidates: Sequence[Candidate],
                data: PerturbData, finetune_steps: int, data_epoch: int, seed: int,
                split_over_ranks: bool = True, on_steps: Optional[Callable[[int], None]] = None,
                progress: bool = True) -> PerturbResult:
    """Scores of `candidates` (acc_after - acc_before, in % points). Restores everything after.

    `data_epoch` and `seed` fix the fine-tuning batches (the same for every candidate);
    with split_over_ranks, rank r takes candidates r, r+W, ... and all ranks get all scores.
    """
    candidates = list(candidates)
    rank, world = (_rank_world() if split_over_ranks else (0, 1))
    mine = candidates[rank::world]
    snapshot = Snapshot(net, optimizer)
    # acc_before is the same on every rank: each evaluates every world-th batch and the counts are summed
    shared = split_over_ranks and world > 1
    val_batches = itertools.islice(data.val, rank, None, world) if shared else data.val
    acc_before = evaluate(net, val_batches, data.criterion, data.precision, steps=data.max_eval_steps,
                          reduce=shared)["top1"]
    scaler = data.precision.make_scaler()
    scores: dict[Candidate, float] = {}
    for edge, op in mine:
        snapshot.restore(net, optimizer)
        with net.switched_off(edge, op):
            torch.manual_seed(seed)
            if finetune_steps > 0:
                res = train(net, cycle(data.train, data_epoch), optimizer, data.criterion, data.precision, scaler,
                            steps=finetune_steps, desc=f"perturb e{edge} {op or 'edge'}", log_every=10**9,
                            progress=progress)
                if on_steps is not None:
                    on_steps(res["steps"])
            acc_after = evaluate(net, data.val, data.criterion, data.precision, steps=data.max_eval_steps)["top1"]
        scores[(edge, op)] = acc_after - acc_before
        log.info("perturb edge %d %s: acc before %.2f after %.2f score %+.2f", edge, op or "(whole edge)",
                 acc_before, acc_after, scores[(edge, op)])
    snapshot.restore(net, optimizer)
    if split_over_ranks:
        for part in D.all_gather_object(scores):
            scores.update(part)
    return PerturbResult({c: scores[c] for c in candidates}, acc_before)


def _rank_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1
