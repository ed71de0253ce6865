#!/usr/bin/env python
"""Supernet-based PertNAS search on the DARTS space (docs/method.md, "The supernet-based search").

torchrun --nproc_per_node=4 search_supernet.py --seed 1 --pretrain_epochs 20 --train_path DATA --save runs/
"""

from nas.search.launch import main

if __name__ == "__main__":
    main("supernet", __doc__)
