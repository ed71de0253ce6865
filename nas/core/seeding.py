"""Seeds derived from the run seed and a step's identity, so that any step can be re-run
alone (after a resume) and draw exactly the random numbers it drew the first time."""

from __future__ import annotations

import hashlib
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
