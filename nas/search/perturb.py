"""perturb-val (SPEC §4): how much does the trained network need a candidate?

For each candidate (an operation of an edge, or a whole edge): restore the trained
snapshot of weights and optimizer, switch the candidate off (it is then not computed),
fine-tune for F + 1 steps, and score acc_after - acc_before on the validation data
(docs/method.md, "perturb-val"). By default every candidate sees the same fine-tuning
batches, so the scores do not depend on which rank computed them; candidates are split
over the ranks and the scores gathered. The original's restore and batches are options.
"""
from __future__ import annotations

import copy
import itertools
import logging
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch
import torch.nn as nn

from nas.core import distributed as D
from nas.core.engine import Precision, cycle, evaluate, train
from nas.search.network import SearchNetwork

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
                data: PerturbData, *, finetune_steps: int, data_epoch: int, seed: int, rank: int = 0, world: int = 1,
                restore: str = "exact", batches: str = "shared",
                prepare: Optional[Callable[[nn.Module], nn.Module]] = None,
                on_steps: Optional[Callable[[int], None]] = None) -> PerturbResult:
    """Scores of `candidates` (acc_after - acc_before, in % points).

    Rank `rank` of `world` takes candidates rank, rank+world, ... and every rank gets every score.
    `restore`: 'exact' starts each candidate from a copy of the trained weights and optimizer
    state; 'accumulate' is the original's restore, which reloaded references to the live
    tensors, so each candidate starts where the previous one's fine-tuning ended.
    `batches`: 'shared' gives every candidate the same fine-tuning batches (fixed by
    `data_epoch` and `seed`), so a score does not depend on its rank; 'fresh' continues one
    stream of batches from candidate to candidate, as the original did.
    `prepare` gives the module that fine-tunes a candidate (nas.core.compile.prepare), made
    anew for each so that its graphs are freed when it is done; None fine-tunes `net` eagerly.
    """
    candidates = list(candidates)
    mine = candidates[rank::world]
    snapshot = Snapshot(net, optimizer) if restore == "exact" else None
    # acc_before is the same on every rank: each evaluates every world-th batch and the counts are summed
    shared = world > 1
    val_batches = itertools.islice(data.val, rank, None, world) if shared else data.val
    acc_before = evaluate(net, val_batches, data.criterion, data.precision, steps=data.max_eval_steps,
                          reduce=shared)["top1"]
    scaler = data.precision.make_scaler()
    stream = cycle(data.train, data_epoch) if batches == "fresh" else None
    if stream is not None:
        torch.manual_seed(seed)
    scores: dict[Candidate, float] = {}
    for edge, op in mine:
        if snapshot is not None:
            snapshot.restore(net, optimizer)
        lr = optimizer.param_groups[0]["lr"]
        with net.switched_off(edge, op):
            if stream is None:
                torch.manual_seed(seed)
            if finetune_steps > 0:
                model = prepare(net) if prepare is not None else net
                res = train(model, stream or cycle(data.train, data_epoch), optimizer, data.criterion, data.precision,
                            scaler, steps=finetune_steps, desc=f"perturb e{edge} {op or 'edge'}", log_every=10**9,
                            progress=False)  # a line per candidate is logged instead
                if on_steps is not None:
                    on_steps(res["steps"])
            acc_after = evaluate(net, data.val, data.criterion, data.precision, steps=data.max_eval_steps)["top1"]
        scores[(edge, op)] = acc_after - acc_before
        log.info("perturb edge %d %s: fine-tune %d steps at lr %.4g, acc before %.2f after %.2f score %+.2f", edge,
                 op or "(whole edge)", finetune_steps, lr, acc_before, acc_after, scores[(edge, op)])
    if snapshot is not None:
        snapshot.restore(net, optimizer)
    if world > 1:
        for part in D.all_gather_object(scores):
            scores.update(part)
    return PerturbResult({c: scores[c] for c in candidates}, acc_before)
