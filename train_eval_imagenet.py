#!/usr/bin/env python
"""Train a searched cell on ImageNet from scratch (DARTS mobile setting, docs/method.md, "Evaluation").

torchrun --nproc_per_node=8 train_eval_imagenet.py --arch EVAL_BEST_EVOLUTIONARY --data DATA --save runs/
"""

from nas.evaluation.launch import main

if __name__ == "__main__":
    main("imagenet", __doc__)
