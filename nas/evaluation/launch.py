"""The launcher of the evaluations: what train_eval_<name>.py runs, from flags to a trained network."""

from __future__ import annotations

from typing import Optional, Sequence

from nas.core.config import parse
from nas.core.errors import run_cli
from nas.evaluation.config import CifarEvalConfig, ImageNetEvalConfig
from nas.evaluation.run import CIFAR, IMAGENET, run_evaluation

TASKS = {"cifar": (CifarEvalConfig, CIFAR), "imagenet": (ImageNetEvalConfig, IMAGENET)}


def main(name: str, description: str, argv: Optional[Sequence[str]] = None) -> None:
    config, task = TASKS[name]

    def go() -> None:
        cfg, given = parse(config, argv, description=description)
        run_evaluation(cfg, given, task)

    run_cli(go)
