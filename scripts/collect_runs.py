#!/usr/bin/env python
"""Tables of the search and evaluation runs under ROOT, and the paper's top-2 genotype pair.

The same as `pertnas runs` (nas/tools/runs.py).
"""

from nas.core.errors import run_cli
from nas.tools.runs import main

if __name__ == "__main__":
    run_cli(main)
