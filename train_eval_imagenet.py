#!/usr/bin/env python
"""Train a searched cell on ImageNet from scratch (DARTS mobile setting, docs/method.md, "Evaluation").

  torchrun --nproc_per_node=8 train_eval_imagenet.py --arch EVAL_BEST_EVOLUTIONARY --data DATA --save runs/
"""
from nas.core.config import parse
from nas.core.errors import run_cli
from nas.evaluation.config import ImageNetEvalConfig
from nas.evaluation.run import IMAGENET, run_evaluation


def main() -> None:
    cfg, given = parse(ImageNetEvalConfig, description=__doc__)
    run_evaluation(cfg, given, IMAGENET)


if __name__ == "__main__":
    run_cli(main)
