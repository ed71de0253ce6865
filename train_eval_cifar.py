#!/usr/bin/env python
"""Train a searched cell on CIFAR-10/100 from scratch (DARTS protocol, docs/method.md, "Evaluation").

  torchrun --nproc_per_node=1 train_eval_cifar.py --arch EVAL_BEST_EVOLUTIONARY --data DATA --save runs/
"""
from nas.core.config import parse
from nas.core.errors import run_cli
from nas.evaluation.config import CifarEvalConfig
from nas.evaluation.run import CIFAR, run_evaluation


def main() -> None:
    cfg, given = parse(CifarEvalConfig, description=__doc__)
    run_evaluation(cfg, given, CIFAR)


if __name__ == "__main__":
    run_cli(main)
