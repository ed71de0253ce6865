#!/usr/bin/env python
"""Predict a genotype's CIFAR-10 accuracy with the NAS-Bench-301 surrogate (docs/method.md, "NAS-Bench-301").

The same as `pertnas nb301` (nas/tools/nb301.py).
"""

from nas.core.errors import run_cli
from nas.tools.nb301 import main

if __name__ == "__main__":
    run_cli(main)
