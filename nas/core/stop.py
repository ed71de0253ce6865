"""A clean stop on SIGTERM or SIGUSR1 (a cluster's time limit, a preemption, `scancel`): the
signal is noted, and the run ends at its next safe point (a finished phase-1 step, a decision,
an epoch) with every file written, one line saying where it stopped and how to resume, and
exit status 128 + the signal's number (143 for SIGTERM, 138 for SIGUSR1). A second signal
stops at once (the files are those of the last safe point). With --requeue, inside a SLURM
job, rank 0 then requeues the job (`scontrol requeue $SLURM_JOB_ID`) and says so on a second
line."""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Optional

import torch
import torch.distributed as dist

from nas.core.errors import Stopped, UserError

log = logging.getLogger("nas")

SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
_received: list[int] = []
_requeue = False
_before: dict = {}  # the handlers that arm() replaced


def arm(*, requeue: bool) -> None:
    """Stop cleanly on SIGTERM and SIGUSR1 from now on (replacing the peer watchdog's SIGTERM
    exit: a peer that really died is still named by the watchdog). Call before any file is made."""
    global _requeue
    if requeue and not os.environ.get("SLURM_JOB_ID"):
        raise UserError(
            "--requeue: SLURM_JOB_ID is not set; the option requeues a SLURM job and works inside one "
            "(a run made with it resumes elsewhere with --no-requeue)"
        )
    _requeue = requeue
    for signum in SIGNALS:
        _before.setdefault(signum, signal.signal(signum, _note))


def disarm() -> None:
    """The handlers from before arm(); no signal noted (a run in a process that goes on)."""
    global _requeue
    for signum, handler in _before.items():
        signal.signal(signum, handler)
    _before.clear()
    _received.clear()
    _requeue = False


def _note(signum, frame) -> None:
    name = signal.Signals(signum).name
    if _received:
        print(
            f"{name} again: stopping now; --resume continues after the last finished step", file=sys.stderr, flush=True
        )
        os._exit(128 + signum)
    _received.append(signum)
    log.warning("%s received: stopping at the next safe point (a second signal stops at once)", name)


def requested() -> int:
    """The signal received in this process, or 0."""
    return _received[0] if _received else 0


def safe_point(where: str, run_dir: Path, *, device: Optional[torch.device] = None) -> None:
    """Raise Stopped when a signal came. With `device` every rank calls this at the same point
    and they agree (a signal on any rank stops all of them here); without, this process
    decides alone (phase 1, where the ranks do not keep step)."""
    signum = requested()
    if device is not None and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        flag = torch.tensor([signum], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        signum = int(flag.item())
    if not signum:
        return
    main = not dist.is_initialized() or dist.get_rank() == 0
    resume = shlex.join([sys.argv[0], "--resume", str(run_dir)])
    line = f"stopped by {signal.Signals(signum).name} after {where}; to continue: {resume}"
    if main and _requeue:  # said first: the requeue ends this job, whose processes then get SIGTERM
        print(line, file=sys.stderr, flush=True)
        line = requeue_job()
    raise Stopped(line if main else "", 128 + signum)


def requeue_job() -> str:
    """`scontrol requeue` this SLURM job; what happened, in words."""
    job = os.environ["SLURM_JOB_ID"]
    try:
        done = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"requeueing SLURM job {job} failed ({type(exc).__name__}: {exc})"
    if done.returncode != 0:
        why = " ".join((done.stderr or done.stdout).split()) or f"exit {done.returncode}"
        return f"requeueing SLURM job {job} failed ({why})"
    return f"SLURM job {job} requeued"
