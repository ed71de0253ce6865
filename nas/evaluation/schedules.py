"""Per-epoch schedules of the evaluation runs (docs/method.md, "Evaluation"): learning rate
and drop-path.

The learning-rate schedules are LambdaLR factors of the base rate, stepped once per epoch,
so that a scheduler's state_dict restores them exactly on resume:
- "cosine" (DARTS CIFAR): lr = base * (1 + cos(pi * (epoch + 1) / E)) / 2: the original steps
  its scheduler at the start of each epoch, so epoch e trains at the value for e + 1 and the
  last epoch at 0;
- "linear" (PC-DARTS ImageNet): lr = base * (E-5-epoch) / (E-5) for the first E-5 epochs and
  base * (E-epoch) / ((E-5) * 5) for the last five (a gentler slope at the end).
When the global batch exceeds 256, the first five epochs multiply the schedule's lr by
(epoch+1) / 5 (a warm-up, as the original's ImageNet script does).
"""

from __future__ import annotations

import math

import torch

from nas.core.errors import UserError

SCHEDULES = ("cosine", "linear")
TAIL_EPOCHS = 5  # the "linear" schedule's last epochs, on a smaller slope
WARMUP_EPOCHS = 5
WARMUP_BATCH = 256  # warm up when the global batch exceeds this


def check_schedule(kind: str, epochs: int) -> None:
    if kind not in SCHEDULES:
        raise UserError(f"--lr_scheduler {kind!r}: expected one of {', '.join(SCHEDULES)}")
    if kind == "linear" and epochs <= TAIL_EPOCHS:
        raise UserError(
            f"--epochs {epochs} with --lr_scheduler linear: expected more than {TAIL_EPOCHS} (its last "
            f"{TAIL_EPOCHS} epochs have a slope of their own); a shorter smoke run: --lr_scheduler cosine"
        )


class LRFactor:
    """lr(epoch) / base for a schedule; a plain object so LambdaLR can save its state."""

    def __init__(self, kind: str, epochs: int, warmup: bool = False):
        check_schedule(kind, epochs)
        self.kind, self.epochs, self.warmup = kind, epochs, warmup

    def __call__(self, epoch: int) -> float:
        ramp = (epoch + 1) / WARMUP_EPOCHS if self.warmup and epoch < WARMUP_EPOCHS else 1.0
        return ramp * self._schedule(epoch)

    def _schedule(self, epoch: int) -> float:
        E = self.epochs
        if self.kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * (epoch + 1) / E))
        if epoch < E - TAIL_EPOCHS:
            return (E - TAIL_EPOCHS - epoch) / (E - TAIL_EPOCHS)
        return (E - epoch) / ((E - TAIL_EPOCHS) * TAIL_EPOCHS)


def build_scheduler(
    optimizer: torch.optim.Optimizer, kind: str, epochs: int, batch_size: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """The per-epoch scheduler; warm-up only for the linear schedule with a batch above 256."""
    warmup = kind == "linear" and batch_size > WARMUP_BATCH
    return torch.optim.lr_scheduler.LambdaLR(optimizer, LRFactor(kind, epochs, warmup))


def drop_path_prob(base: float, epoch: int, epochs: int) -> float:
    """Drop-path probability ramped linearly from 0 at the first epoch (DARTS)."""
    return base * epoch / epochs
