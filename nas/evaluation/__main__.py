"""python -m nas.evaluation cifar|imagenet [flags]: train_eval_cifar.py and train_eval_imagenet.py
from an installed package, the same as `pertnas eval` (torchrun --nproc_per_node=8 -m nas.evaluation ...)."""

import sys

from nas.core.errors import run_cli
from nas.tools.cli import main

if __name__ == "__main__":
    sys.argv[0] = "python -m nas.evaluation"  # argparse's prog in the usage lines
    run_cli(lambda: main(["eval", *sys.argv[1:]]))
