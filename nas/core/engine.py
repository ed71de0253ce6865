"""The one training/evaluation loop that every script uses (searches and evaluations).

Mixed precision: fp16 autocast + GradScaler on CUDA, optional bf16 autocast on the CPU.
Metrics are accumulated on the device and synchronised only at log points, so the loop
does not stall the GPU every step.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Optional

import torch
import torch.nn as nn
from tqdm import tqdm

from nas.core import distributed as D
from nas.core.errors import UserError

log = logging.getLogger("nas")


@dataclass(frozen=True)
class Precision:
    """How a step computes: autocast dtype (None = fp32) and whether a GradScaler is needed."""

    device_type: str = "cpu"
    dtype: Optional[torch.dtype] = None

    @classmethod
    def choose(cls, device: torch.device, amp: str = "auto") -> "Precision":
        """amp: 'auto' (fp16 on CUDA, fp32 on the CPU), 'fp16', 'bf16' or 'off'."""
        dtypes = {"fp16": torch.float16, "bf16": torch.bfloat16, "off": None}
        if amp == "auto":
            dtype = torch.float16 if device.type == "cuda" else None
        elif amp in dtypes:
            dtype = dtypes[amp]
        else:
            raise UserError(f"--amp {amp!r}: expected auto, fp16, bf16 or off")
        if dtype is torch.float16 and device.type != "cuda":
            raise UserError("--amp fp16 needs CUDA: use bf16 or off on the CPU")
        return cls(device.type, dtype)

    def autocast(self):
        return torch.autocast(self.device_type, dtype=self.dtype, enabled=self.dtype is not None)

    @property
    def scaled(self) -> bool:
        """Whether the loss is scaled (fp16): a GradScaler is enabled."""
        return self.dtype is torch.float16

    def make_scaler(self) -> torch.amp.GradScaler:
        return torch.amp.GradScaler(self.device_type, enabled=self.scaled)


def accuracy_counts(logits: torch.Tensor, target: torch.Tensor, topk=(1, 5)) -> list[torch.Tensor]:
    """Number of samples whose target is in the top-k predictions, for each k."""
    maxk = min(max(topk), logits.size(1))
    pred = logits.topk(maxk, dim=1).indices
    hit = pred.eq(target.view(-1, 1))
    return [hit[:, : min(k, maxk)].any(dim=1).sum() for k in topk]


class Meter:
    """Sums of loss and top-1 and top-5 hits, kept on the device (no host-device transfer
    per step: a blocking copy would stall the GPU and break graph replay's overlap), and the
    sample count, which the host knows, kept on the host."""

    def __init__(self, device: torch.device):
        self.sums = torch.zeros(3, dtype=torch.float64, device=device)
        self.n = 0

    def update(self, loss: torch.Tensor, logits: torch.Tensor, target: torch.Tensor) -> None:
        n = target.size(0)
        c1, c5 = accuracy_counts(logits.detach(), target)
        self.sums += torch.stack([loss.detach().double() * n, c1.double(), c5.double()])
        self.n += n

    def result(self, reduce: bool = False) -> dict:
        sums = torch.cat([self.sums, self.sums.new_tensor([self.n])])  # one transfer, at a log point
        if reduce:
            D.all_reduce_sum(sums)
        loss, c1, c5, n = sums.tolist()
        samples = int(n)
        n = max(n, 1.0)
        return {"loss": loss / n, "top1": 100.0 * c1 / n, "top5": 100.0 * c5 / n, "samples": samples}


def split_output(out):
    """Evaluation networks return (logits, aux_logits); the search network returns logits."""
    return out if isinstance(out, tuple) else (out, None)


def cycle(loader, start_epoch: int = 0) -> Iterator:
    """Batches across epoch boundaries (for fine-tuning a fixed number of steps)."""
    epoch = start_epoch
    while True:
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)
        yielded = False
        for batch in loader:
            yielded = True
            yield batch
        if not yielded:
            raise UserError("the training loader yielded no batch: the data set is smaller than one batch")
        epoch += 1


def _check_finite(loss_value: float, step: int, optimizer, desc: str) -> None:
    if not math.isfinite(loss_value):
        lr = optimizer.param_groups[0]["lr"]
        raise UserError(
            f"{desc}: training loss became {loss_value} at step {step} (lr {lr:g}): lower the learning "
            f"rate or check the data"
        )


def show_bars(progress: bool) -> bool:
    """Progress bars only on a terminal: redirected to a file (sbatch, a sweep's log) a bar's
    redraws are fragments glued onto the log lines, so periodic log lines replace them."""
    return progress and sys.stderr.isatty()


def train(
    model: nn.Module,
    batches: Iterable,
    optimizer: torch.optim.Optimizer,
    criterion: nn.Module,
    precision: Precision,
    scaler: torch.amp.GradScaler,
    *,
    steps: Optional[int] = None,
    grad_clip: Optional[float] = None,
    aux_weight: float = 0.0,
    log_every: int = 50,
    desc: str = "train",
    progress: bool = True,
    total: Optional[int] = None,
    on_step: Optional[Callable[[int], None]] = None,
) -> dict:
    """Train over `batches` (one epoch of a loader, or `steps` batches of an endless iterator).

    `progress`: a bar on a terminal, else a log line with the ETA every `log_every` steps (none
    at the last step: the caller logs the finished epoch); off, neither.
    Returns the loss/top-1/top-5 averages of this process and the number of steps taken."""
    model.train()
    device = next(model.parameters()).device
    meter = Meter(device)
    total = steps if steps is not None else (total if total is not None else _len(batches))
    bars = show_bars(progress)
    bar = tqdm(total=total, desc=desc, leave=False, disable=not bars, dynamic_ncols=True)
    start = time.time()
    step = 0
    for x, y in batches:
        optimizer.zero_grad(set_to_none=True)
        with precision.autocast():
            logits, aux = split_output(model(x))
            loss = criterion(logits, y)
            if aux is not None and aux_weight > 0:
                loss = loss + aux_weight * criterion(aux, y)
        scaler.scale(loss).backward()
        if grad_clip:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
        meter.update(loss, logits, y)
        step += 1
        bar.update(1)
        if on_step is not None:
            on_step(step)
        if step % log_every == 0 or step == total:
            res = meter.result()
            _check_finite(res["loss"], step, optimizer, desc)
            if progress and not bars and step != total:
                elapsed = time.time() - start
                eta = elapsed / step * (total - step) if total else float("nan")
                log.info(
                    "%s step %d/%s loss %.4f top1 %.2f lr %.4g eta %.0fs",
                    desc,
                    step,
                    total,
                    res["loss"],
                    res["top1"],
                    optimizer.param_groups[0]["lr"],
                    eta,
                )
        if steps is not None and step >= steps:
            break
    bar.close()
    res = meter.result()
    _check_finite(res["loss"], step, optimizer, desc)
    res["steps"] = step
    return res


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    criterion: nn.Module,
    precision: Precision,
    *,
    steps: Optional[int] = None,
    reduce: bool = False,
    desc: str = "eval",
    progress: bool = False,
) -> dict:
    """Average loss and top-1/top-5 (%) over `loader`; `reduce` sums over ranks (sharded data)."""
    model.eval()
    device = next(model.parameters()).device
    meter = Meter(device)
    bar = tqdm(total=steps or _len(loader), desc=desc, leave=False, disable=not show_bars(progress), dynamic_ncols=True)
    for i, (x, y) in enumerate(loader):
        if steps is not None and i >= steps:
            break
        with precision.autocast():
            logits, _ = split_output(model(x))
            loss = criterion(logits, y)
        meter.update(loss.float(), logits.float(), y)
        bar.update(1)
    bar.close()
    return meter.result(reduce=reduce)


def _len(obj) -> Optional[int]:
    try:
        return len(obj)
    except TypeError:
        return None
