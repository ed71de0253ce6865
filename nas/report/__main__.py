"""python -m nas.report: the same as `pertnas report` (nas/tools/report.py)."""

from nas.core.errors import run_cli
from nas.tools.report import main

if __name__ == "__main__":
    run_cli(main)
