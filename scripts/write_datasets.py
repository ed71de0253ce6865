#!/usr/bin/env python
"""Write a data root for PertNAS: FFCV .beton files plus the raw data the torch loader reads.

The same as `pertnas data` (nas/tools/data.py).
"""

from nas.core.errors import run_cli
from nas.tools.data import main

if __name__ == "__main__":
    run_cli(main)
