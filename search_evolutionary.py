#!/usr/bin/env python
"""Evolutionary PertNAS search on the DARTS space (SPEC §5).

  torchrun --nproc_per_node=4 search_evolutionary.py --seed 1 --npop 4 --train_path DATA --save runs/
"""
from nas import distributed
from nas.config import parse
from nas.errors import run_cli
from nas.evolutionary import run_evolutionary
from nas.search_config import EvolutionaryConfig


def main() -> None:
    cfg, given = parse(EvolutionaryConfig, description=__doc__)
    try:
        run_evolutionary(cfg, given)
    finally:
        distributed.cleanup()


if __name__ == "__main__":
    run_cli(main)
