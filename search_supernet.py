#!/usr/bin/env python
"""Supernet-based PertNAS search on the DARTS space (SPEC §6).

  torchrun --nproc_per_node=4 search_supernet.py --seed 1 --pretrain_epochs 20 --train_path DATA --save runs/
"""
from nas import distributed
from nas.config import parse
from nas.errors import run_cli
from nas.supernet import run_supernet
from nas.search_config import SupernetConfig


def main() -> None:
    cfg, given = parse(SupernetConfig, description=__doc__)
    try:
        run_supernet(cfg, given)
    finally:
        distributed.cleanup()


if __name__ == "__main__":
    run_cli(main)
