"""Run directories: naming, per-rank logs, TensorBoard, progress state and summaries."""
from __future__ import annotations

import logging
import os
import resource
import sys
import time
from pathlib import Path
from typing import Optional

import torch

from . import distributed as D
from .errors import UserError
from .io import write_json

log = logging.getLogger("nas")
STATE_FILE = "state.json"


def new_run_dir(save: str, prefix: str, note: str) -> Path:
    """`<save>/<prefix>-<note>-<timestamp>`, created by rank 0, the same path on every rank."""
    path = None
    if _rank() == 0:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path(save) / f"{prefix}-{note}-{stamp}"
        n = 1
        while path.exists():  # two runs started in the same second
            n += 1
            path = Path(save) / f"{prefix}-{note}-{stamp}-{n}"
        try:
            path.mkdir(parents=True)
        except OSError as exc:
            raise UserError(f"cannot create run directory {path}: {exc.strerror}") from None
    return Path(D.broadcast_object(str(path) if path else None))


def _rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def setup_logging(run_dir: Optional[Path], rank: int) -> None:
    """Log to `log_rank<r>.txt` in the run directory; rank 0 also logs to the terminal."""
    root = logging.getLogger("nas")
    root.setLevel(logging.INFO)
    root.propagate = False
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    fmt = logging.Formatter(f"%(asctime)s [rank {rank}] %(message)s", datefmt="%m/%d %H:%M:%S")
    if rank == 0:
        sh = logging.StreamHandler(sys.stdout)
        sh.setFormatter(fmt)
        root.addHandler(sh)
    if run_dir is not None:
        fh = logging.FileHandler(run_dir / f"log_rank{rank}.txt")
        fh.setFormatter(fmt)
        root.addHandler(fh)


def tensorboard(run_dir: Path, rank: int):
    """A SummaryWriter under tb/rank<r> (every rank logs its own phase-1 models)."""
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(run_dir / "tb" / f"rank{rank}"))


def write_state(run_dir: Path, **state) -> None:
    write_json(Path(run_dir) / STATE_FILE, state)


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory of this process: CUDA allocator's peak on GPUs, max RSS on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss_kb / 1024 if sys.platform != "darwin" else rss_kb / 2**20


def elastic_restart() -> bool:
    """True when torchrun restarted this worker after a failure."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0


def eta(elapsed: float, done: int, left: int) -> str:
    """'ETA 3m20s' from the average time of the `done` units so far."""
    if done <= 0:
        return "ETA unknown"
    seconds = int(elapsed / done * left)
    return f"ETA {seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"ETA {seconds // 60}m{seconds % 60:02d}s"
