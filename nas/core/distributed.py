"""Distributed helpers, in one place: process-group set-up under torchrun or SLURM, and
the few collectives the searches and evaluations use. One process without torchrun runs
the same code with world size 1 and no process group."""
from __future__ import annotations

import datetime
import os
import socket
import subprocess
from dataclasses import dataclass
from typing import Any

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
            timeout=datetime.timedelta(minutes=60),
            **({"device_id": dev} if use_cuda else {}),
        )
    return DistEnv(rank=rank, local_rank=local_rank, world_size=world, device=dev)


def cleanup() -> None:
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
