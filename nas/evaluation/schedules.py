"""Per-epoch schedules of the evaluation runs (SPEC §7): learning rate and drop-path.

The learning-rate schedules are LambdaLR factors of the base rate, stepped once per epoch,
so that a scheduler's state_dict restores them exactly on resume:
- "cosine" (DARTS CIFAR): lr = base * (1 + cos(pi * epoch / E)) / 2, annealed to 0;
- "linear" (PC-DARTS ImageNet): lr = base * (E-5-epoch) / (E-5) for the first E-5 epochs and
  base * (E-epoch) / ((E-5) * 5) for the last five (a gentler slope at the end), with a
  5-epoch linear warm-up, lr = base * (epoch+1) / 5, when the global batch exceeds 256.
"""
from __future__ import annotations

import math

import torch

from nas.core.errors import UserError

SCHEDULES = ("cosine", "linear")
TAIL_EPOCHS = 5  # the "linear" schedule's last epochs, on a smaller slope
WARMUP_EPOCHS = 5
WARMUP_BATCH = 256  # warm up when the global batch exceeds this


class LRFactor:
    """lr(epoch) / base for a schedule; a plain object so LambdaLR can save its state."""

    def __init__(self, kind: str, epochs: int, warmup: bool = False):
        if kind not in SCHEDULES:
            raise UserError(f"--lr_scheduler {kind!r}: expected one of {', '.join(SCHEDULES)}")
        if kind == "linear" and epochs <= TAIL_EPOCHS:
            raise UserError(f"--epochs {epochs} with the linear schedule: expected more than {TAIL_EPOCHS}")
        self.kind, self.epochs, self.warmup = kind, epochs, warmup

    def __call__(self, epoch: int) -> float:
        if self.warmup and epoch < WARMUP_EPOCHS:
            return (epoch + 1) / WARMUP_EPOCHS
        E = self.epochs
        if self.kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * epoch / E))
        if epoch < E - TAIL_EPOCHS:
            return (E - TAIL_EPOCHS - epoch) / (E - TAIL_EPOCHS)
        return (E - epoch) / ((E - TAIL_EPOCHS) * TAIL_EPOCHS)


def build_scheduler(optimizer: torch.optim.Optimizer, kind: str, epochs: int,
                    batch_size: int) -> torch.optim.lr_scheduler.LambdaLR:
    """The per-epoch scheduler; warm-up only for the linear schedule with a batch above 256."""
    warmup = kind == "linear" and batch_size > WARMUP_BATCH
    return torch.optim.lr_scheduler.LambdaLR(optimizer, LRFactor(kind, epochs, warmup))


def drop_path_prob(base: float, epoch: int, epochs: int) -> float:
    """Drop-path probability ramped linearly from 0 at the first epoch (DARTS)."""
    return base * epoch / epochs
