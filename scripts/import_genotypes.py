#!/usr/bin/env python
"""Write nas/genotype/library/<NAME>.json for every `NAME = Genotype(...)` of a Python-literal file.

The same as `pertnas import-genotypes` (nas/tools/import_genotypes.py).
"""

from nas.core.errors import run_cli
from nas.tools.import_genotypes import main

if __name__ == "__main__":
    run_cli(main)
