"""Command-line spellings of the data flags that the searches and the evaluations share."""
from __future__ import annotations

from nas.core.config import Alias

# the old --cifar100 flag (command lines, YAML files, old runs' config.yaml): --no-cifar100 is cifar10
CIFAR100_ALIAS = Alias(bool, "same as --dataset cifar100 (kept for old command lines and runs)",
                       lambda on: ("dataset", "cifar100" if on else "cifar10"))
