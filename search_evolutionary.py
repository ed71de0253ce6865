#!/usr/bin/env python
"""Evolutionary PertNAS search on the DARTS space (docs/method.md, "The evolutionary search").

torchrun --nproc_per_node=4 search_evolutionary.py --seed 1 --npop 4 --train_path DATA --save runs/
"""

from nas.search.launch import main

if __name__ == "__main__":
    main("evolutionary", __doc__)
