"""python -m nas.genotype: the same as `pertnas genotype` (nas/tools/genotype.py)."""

from nas.core.errors import run_cli
from nas.tools.genotype import main

if __name__ == "__main__":
    run_cli(main)
