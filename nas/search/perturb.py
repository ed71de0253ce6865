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
import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch
import torch.nn as nn

from nas.core import distributed as D
from nas.core.compile import release
from nas.core.engine import Precision, cycle, evaluate, train
from nas.core.seeding import derive_seed
from nas.search.network import SearchNetwork

log = logging.getLogger("nas")

# A candidate: (edge, op) switches one operation off; (edge, None) the whole edge.
Candidate = tuple[int, Optional[str]]


@dataclass
class PerturbData:
    train: object  # unsharded training loader, read by one rank alone
    val: object  # validation loader (held-out split by default)
    criterion: nn.Module
    precision: Precision
    max_eval_steps: Optional[int] = None  # --fast: one batch


@dataclass
class PerturbResult:
    scores: dict  # candidate -> acc_after - acc_before (% points); under --scores random, a draw
    acc_before: float  # validation top-1 (%) of the trained network


def random_score(seed: int, candidate: Candidate) -> float:
    """The control's score of `candidate` (--scores random): uniform in [-1, 1), drawn from a seed
    of the step and the candidate alone, so it is the same on any rank and after a resume, and
    the rules that keep the lowest scores pick uniformly among the candidates."""
    edge, op = candidate
    return random.Random(derive_seed(seed, edge, op or "edge")).uniform(-1.0, 1.0)


class Snapshot:
    """An exact, independent copy of a model's and an optimizer's state, put back in place.

    Restoring copies tensor to tensor (one foreach copy) instead of `load_state_dict`, whose
    per-module Python walk cost more than a fine-tuning step of the tiny search networks; the
    network and its parameters stay the same objects across candidates, so this is exact.
    `weights=False` keeps the optimizer's state alone (the original's restore on torch 1.12:
    its model state_dict held the live tensors, its optimizer state_dict was deep-copied)."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, *, weights: bool = True):
        self.live = list(model.state_dict().values()) if weights else []  # the parameters and buffers themselves
        self.saved = [t.detach().clone() for t in self.live]
        self.optim_state = {p: _clone(st) for p, st in optimizer.state.items()}
        self.groups = [{k: copy.deepcopy(v) for k, v in g.items() if k != "params"} for g in optimizer.param_groups]

    def restore(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        if self.live:
            with torch.no_grad():
                torch._foreach_copy_(self.live, self.saved)
        # fresh copies: the next fine-tuning updates momentum buffers in place, and an optimizer
        # that had no state for a parameter (a fresh one) must have none again
        optimizer.state = defaultdict(dict, {p: _clone(st) for p, st in self.optim_state.items()})
        for group, saved in zip(optimizer.param_groups, self.groups):
            group.update(copy.deepcopy(saved))


def _clone(state: dict) -> dict:
    return {k: v.detach().clone() if torch.is_tensor(v) else copy.deepcopy(v) for k, v in state.items()}


def perturb_val(
    net: SearchNetwork,
    optimizer: torch.optim.Optimizer,
    candidates: Sequence[Candidate],
    data: PerturbData,
    *,
    finetune_steps: int,
    data_epoch: int,
    seed: int,
    rank: int = 0,
    world: int = 1,
    restore: str = "exact",
    batches: str = "shared",
    prepare: Optional[Callable[[nn.Module], nn.Module]] = None,
    on_steps: Optional[Callable[[int], None]] = None,
    random_scores: Optional[int] = None,
) -> PerturbResult:
    """Scores of `candidates` (acc_after - acc_before, in % points).

    Rank `rank` of `world` takes candidates rank, rank+world, ... and every rank gets every score.
    `restore`: 'exact' starts each candidate from a copy of the trained weights and optimizer
    state; 'accumulate' is the original's restore on its torch 1.12, which reloaded references
    to the live tensors (weights and BN statistics carry from one candidate to the next) but a
    deep copy of the optimizer state (momentum and learning rate restored before each).
    `batches`: 'shared' gives every candidate the same fine-tuning batches (fixed by
    `data_epoch` and `seed`), so a score does not depend on its rank; 'fresh' gives each
    candidate the first batches of a new seeded shuffle (an epoch derived from `data_epoch` and
    the candidate's index), as the original's loader did when re-entered for every candidate.
    `prepare` gives the module that fine-tunes a candidate (nas.core.compile.prepare), made
    anew for each so that its graphs are freed when it is done; None fine-tunes `net` eagerly.
    `random_scores` (a seed: --scores random, the control) computes every candidate as above, at
    the same cost, then scores it with `random_score` instead of what it measured.
    """
    candidates = list(candidates)
    mine = candidates[rank::world]
    snapshot = Snapshot(net, optimizer, weights=restore == "exact")
    # acc_before is the same on every rank: each evaluates every world-th batch and the counts are summed
    shared = world > 1
    val_batches = itertools.islice(data.val, rank, None, world) if shared else data.val
    acc_before = evaluate(net, val_batches, data.criterion, data.precision, steps=data.max_eval_steps, reduce=shared)[
        "top1"
    ]
    scores: dict[Candidate, float] = {}
    for index, (edge, op) in zip(range(rank, len(candidates), world), mine):
        snapshot.restore(net, optimizer)
        lr = optimizer.param_groups[0]["lr"]
        # shared: every candidate reads epoch `data_epoch`; fresh: each its own epoch, a new
        # seeded permutation from its first batch on (the original re-entered its loader per candidate)
        epoch = data_epoch if batches == "shared" else derive_seed(data_epoch, "candidate", index) % 10**6
        with net.switched_off(edge, op):
            torch.manual_seed(seed)
            if finetune_steps > 0:
                model = prepare(net) if prepare is not None else net
                res = train(
                    model,
                    cycle(data.train, epoch),
                    optimizer,
                    data.criterion,
                    data.precision,
                    # a new scaler each: a scale lowered by an earlier candidate's overflow would
                    # make a score depend on the candidate order (and on the rank)
                    data.precision.make_scaler(),
                    steps=finetune_steps,
                    desc=f"perturb e{edge} {op or 'edge'}",
                    log_every=10**9,
                    progress=False,
                )  # a line per candidate is logged instead
                release(model)  # its graphs' memory, before the next candidate captures
                if on_steps is not None:
                    on_steps(res["steps"])
            acc_after = evaluate(net, data.val, data.criterion, data.precision, steps=data.max_eval_steps)["top1"]
        measured = acc_after - acc_before
        scores[(edge, op)] = measured if random_scores is None else random_score(random_scores, (edge, op))
        log.info(
            "perturb edge %d %s: fine-tune %d steps at lr %.4g, acc before %.2f after %.2f %s",
            edge,
            op or "(whole edge)",
            finetune_steps,
            lr,
            acc_before,
            acc_after,
            f"score {measured:+.2f}"
            if random_scores is None
            else f"(measured {measured:+.2f}, ignored) random score {scores[(edge, op)]:+.2f} (control)",
        )
    snapshot.restore(net, optimizer)
    if world > 1:
        for part in D.all_gather_object(scores):
            scores.update(part)
    return PerturbResult({c: scores[c] for c in candidates}, acc_before)
