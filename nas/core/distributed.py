"""Distributed helpers, in one place: process-group set-up under torchrun or SLURM, the
threads per process, a watchdog for lost peers, and the few collectives the searches and
evaluations use. One process without torchrun runs the same code with world size 1 and no
process group."""

from __future__ import annotations

import datetime
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import torch
import torch.distributed as dist

from nas.core.errors import UserError


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return dist.is_available() and dist.is_initialized()


def _env_int(name: str) -> int:
    value = os.environ[name]
    try:
        return int(value)
    except ValueError:
        raise UserError(f"environment variable {name}={value!r} is not an integer") from None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _slurm_master_addr() -> str:
    nodelist = os.environ.get("SLURM_JOB_NODELIST") or os.environ.get("SLURM_NODELIST")
    if not nodelist:
        return "127.0.0.1"
    try:  # the first host of the allocation hosts the rendezvous
        out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, check=True)
        return out.stdout.split()[0]
    except (OSError, subprocess.CalledProcessError, IndexError):
        raise UserError(f"cannot resolve the first host of SLURM_JOB_NODELIST={nodelist!r}: set MASTER_ADDR") from None


def init_distributed(cluster: str = "local", device: str = "auto", force: bool = False) -> DistEnv:
    """Set up the process group from torchrun's (cluster 'local') or SLURM's variables.

    The global rank comes from RANK / SLURM_PROCID (never from the local rank). NCCL on CUDA,
    gloo on the CPU, env:// rendezvous. With one process and force=False, no group is made.
    """
    if cluster == "slurm" and "SLURM_PROCID" in os.environ:
        rank, local_rank, world = _env_int("SLURM_PROCID"), _env_int("SLURM_LOCALID"), _env_int("SLURM_NTASKS")
        os.environ.setdefault("MASTER_ADDR", _slurm_master_addr())
        os.environ.setdefault("MASTER_PORT", "29500")
    elif cluster == "slurm":
        raise UserError("--cluster slurm but SLURM_PROCID is not set: launch with srun, or use --cluster local")
    elif cluster == "local" and "RANK" in os.environ:
        rank, local_rank, world = _env_int("RANK"), _env_int("LOCAL_RANK"), _env_int("WORLD_SIZE")
    elif cluster == "local":
        rank, local_rank, world = 0, 0, 1
    else:
        raise UserError(f"--cluster {cluster!r}: expected 'local' or 'slurm'")

    if device == "auto":
        use_cuda = torch.cuda.is_available()
    elif device in ("cuda", "cpu"):
        use_cuda = device == "cuda"
        if use_cuda and not torch.cuda.is_available():
            raise UserError("--device cuda but no CUDA device is available")
    else:
        raise UserError(f"--device {device!r}: expected auto, cuda or cpu")
    if use_cuda:
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
        dev = torch.device("cuda", torch.cuda.current_device())
    else:
        dev = torch.device("cpu")

    if world > 1 or force:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(_free_port()))
        dist.init_process_group(
            backend="nccl" if use_cuda else "gloo",
            init_method="env://",
            rank=rank,
            world_size=world,
            # long: in phase 1 each rank trains its own models, and a collective may wait for the
            # slowest; a dead peer is found by the watchdog within seconds instead
            timeout=datetime.timedelta(minutes=60),
            **({"device_id": dev} if use_cuda else {}),
        )
        if world > 1:
            set_threads(sum(h == socket.gethostname() for h in all_gather_object(socket.gethostname())))
            PeerWatchdog.start(rank, world)
    return DistEnv(rank=rank, local_rank=local_rank, world_size=world, device=dev)


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def set_threads(local_world: int) -> int:
    """Share this machine's cores among its processes (torchrun sets OMP_NUM_THREADS=1 only when
    it starts several itself; two launchers on one machine would each take every core). The
    processes here are counted by host name, so that case counts too. OMP_NUM_THREADS wins."""
    if os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads()
    cores = available_cores()
    launcher = [os.environ.get(v, "") for v in ("LOCAL_WORLD_SIZE", "SLURM_NTASKS_PER_NODE")]
    local_world = max([local_world] + [int(v) for v in launcher if v.isdigit()])
    torch.set_num_threads(max(1, cores // local_world))
    return torch.get_num_threads()


class PeerWatchdog:
    """Every process bumps a counter in the rendezvous store every `INTERVAL` seconds and watches
    the others'. A counter that stops for `STALE` seconds is a lost process (killed, or its
    machine gone): this process then prints one line naming it and how to resume, and exits,
    instead of a backend traceback or a collective that waits for an hour."""

    INTERVAL, STALE = 1.0, 15.0
    EXIT_CODE = 3
    _current: Optional["PeerWatchdog"] = None

    def __init__(self, rank: int, world: int, store):
        self.rank, self.world, self.store = rank, world, store
        self.run_dir: Optional[Path] = None
        self.stopped = threading.Event()
        self._seen: dict[int, tuple[int, float]] = {}  # rank (-1: the store) -> (counter, when it last moved)
        self.thread: Optional[threading.Thread] = None

    @classmethod
    def start(cls, rank: int, world: int) -> Optional["PeerWatchdog"]:
        try:  # a client of its own: the process group's store is busy in the main thread
            store = dist.TCPStore(
                os.environ["MASTER_ADDR"],
                int(os.environ["MASTER_PORT"]),
                is_master=False,
                timeout=datetime.timedelta(seconds=cls.STALE),
            )
        except (KeyError, ValueError, RuntimeError):
            return None  # no store to watch through: the collectives' own errors and timeout remain
        prefix = f"nas/heartbeat/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}/"
        cls._current = watchdog = cls(rank, world, dist.PrefixStore(prefix, store))
        for r in range(world):
            watchdog.store.add(str(r), 0)  # every counter exists: reading one never waits
        watchdog.thread = threading.Thread(target=watchdog._loop, name="peer-watchdog", daemon=True)
        watchdog.thread.start()
        return watchdog

    def _loop(self) -> None:
        while not self.stopped.wait(self.INTERVAL):
            try:
                self.store.add(str(self.rank), 1)
                counts = [int(v) for v in self.store.multi_get([str(r) for r in range(self.world)])]
            except (RuntimeError, ValueError):
                counts = [-1]  # the store's host (the launcher of rank 0) is gone
            self._check(counts, time.monotonic())

    def _check(self, counts: list[int], now: float) -> None:
        """Note which counters moved (`[-1]`: the store did not answer); exit on a lost one."""
        if counts == [-1]:  # the ranks' silence is the store's then: their clocks restart when it answers
            self._seen = {-1: self._seen.get(-1, (0, now))}
        else:
            self._seen.pop(-1, None)
            for rank, count in enumerate(counts):
                if self._seen.get(rank, (None,))[0] != count:
                    self._seen[rank] = (count, now)
        lost = [key for key, (_, moved) in self._seen.items() if now - moved > self.STALE]
        if lost == [-1]:
            self._exit("lost the rendezvous store (its launcher or rank 0 is gone)")
        elif lost:
            self._exit(f"lost rank {', '.join(map(str, lost))} (no sign of life for {self.STALE:.0f}s)")

    def _exit(self, what: str) -> None:
        print(f"error: {what}: {resume_hint(self.run_dir)}", file=sys.stderr, flush=True)
        os._exit(self.EXIT_CODE)  # the main thread may be stuck in a collective that never returns

    def wait_for_verdict(self) -> None:
        """After a collective failed: give the watchdog the time to name the lost rank (it exits)."""
        time.sleep(self.STALE + 3 * self.INTERVAL)


def resume_hint(run_dir: Optional[Path]) -> str:
    return (
        f"this process stops too; launch every process again with --resume {run_dir}"
        if run_dir is not None
        else "this process stops too, before a run directory was made; start the run again"
    )


def watch_run_dir(run_dir: Path) -> None:
    """Name this run directory in the lost-peer message (where a --resume continues)."""
    if PeerWatchdog._current is not None:
        PeerWatchdog._current.run_dir = Path(run_dir)


def guard_peers(main: Callable[[], Any]) -> Any:
    """Run `main`; when a collective fails because a peer died, the watchdog's one-line error
    ends the process rather than the backend's traceback (other errors are raised as they are)."""
    try:
        return main()
    except RuntimeError:  # the backends' errors (dist.DistError is one)
        if PeerWatchdog._current is not None:
            PeerWatchdog._current.wait_for_verdict()
        raise


def cleanup() -> None:
    watchdog = PeerWatchdog._current
    if watchdog is not None:  # a peer that ends its run is not lost
        watchdog.stopped.set()
        if watchdog.thread is not None:
            # a daemon thread still inside a store call when the interpreter exits aborts the
            # process ("terminate called without an active exception"): a finished rank exited -6
            watchdog.thread.join(timeout=2 * watchdog.INTERVAL)
        PeerWatchdog._current = None
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def barrier() -> None:
    if _active():
        dist.barrier()


def all_gather_object(obj: Any) -> list[Any]:
    if not _active():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    if not _active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if _active():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast_buffers(module: torch.nn.Module, src: int = 0) -> None:
    """Make BN running statistics identical on all ranks (DDP leaves each rank's last update)."""
    if not _active():
        return
    for buf in module.buffers():
        dist.broadcast(buf.data, src=src)


def check_agreement(value: Any, what: str) -> Any:
    """All ranks must reach the same decision; fail loudly when they do not."""
    values = all_gather_object(value)
    if any(v != values[0] for v in values[1:]):
        raise RuntimeError(f"ranks disagree on {what}: " + "; ".join(f"rank {r}: {v}" for r, v in enumerate(values)))
    return value
