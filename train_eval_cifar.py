#!/usr/bin/env python
"""Train a searched cell on CIFAR-10/100 from scratch (DARTS protocol, docs/method.md, "Evaluation").

torchrun --nproc_per_node=1 train_eval_cifar.py --arch EVAL_BEST_EVOLUTIONARY --data DATA --save runs/
"""

from nas.evaluation.launch import main

if __name__ == "__main__":
    main("cifar", __doc__)
