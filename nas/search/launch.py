"""The launcher of the searches: what search_<name>.py runs, from flags to genotype."""

from __future__ import annotations

from typing import Optional, Sequence

from nas.core import stop
from nas.core.config import parse
from nas.core.distributed import cleanup, guard_peers
from nas.core.errors import run_cli
from nas.core.rundir import release_run_dirs
from nas.search.driver import SearchRun
from nas.search.registry import get_method


def run_search(name: str, cfg, given: Optional[dict] = None) -> SearchRun:
    run = SearchRun(get_method(name), cfg, given)
    run.run()
    return run


def main(name: str, description: str, argv: Optional[Sequence[str]] = None) -> None:
    """What search_<name>.py runs: flags in, the search, the genotype out."""

    def go() -> None:
        cfg, given = parse(get_method(name).config, argv, description=description)
        try:
            guard_peers(lambda: run_search(name, cfg, given))
        finally:
            release_run_dirs()  # a refused or failed run leaves its directory to the next --resume
            cleanup()
            stop.disarm()

    run_cli(go)
