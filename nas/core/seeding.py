"""Seeds derived from the run seed and a step's identity, so that any step can be re-run
alone (after a resume) and draw exactly the random numbers it drew the first time."""

from __future__ import annotations

import hashlib
import os
import random

import numpy as np
import torch


def derive_seed(seed: int, *keys) -> int:
    """A 31-bit seed for the step named by `keys` in the run with `seed`."""
    text = "/".join(str(k) for k in (seed, *keys))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little") & 0x7FFFFFFF


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


# cuBLAS's deterministic workspace; it must be in the environment before the first cuBLAS call
CUBLAS_WORKSPACE = ":4096:8"


def prepare_determinism(deterministic: bool) -> None:
    """Before CUDA starts (and before any spawned process, which inherits it): the cuBLAS
    workspace setting that deterministic matrix products need."""
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)


def set_determinism(deterministic: bool, device: torch.device) -> None:
    """CUDA kernels: deterministic ones (`--deterministic`: one seed, one result, also across a
    resume) or the fastest (cuDNN's autotuner; atomics-based backward passes such as adaptive
    average pooling's differ from run to run). CPU runs are deterministic for a given thread
    count either way."""
    if device.type != "cuda":
        return
    prepare_determinism(deterministic)
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
