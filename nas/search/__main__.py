"""python -m nas.search evolutionary|supernet [flags]: search_evolutionary.py and search_supernet.py
from an installed package, the same as `pertnas search` (torchrun --nproc_per_node=4 -m nas.search ...)."""

import sys

from nas.core.errors import run_cli
from nas.tools.cli import main

if __name__ == "__main__":
    sys.argv[0] = "python -m nas.search"  # argparse's prog in the usage lines
    run_cli(lambda: main(["search", *sys.argv[1:]]))
