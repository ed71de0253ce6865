"""The registry of search methods. A method is one module that registers a `SearchMethod`:
its name, its config class, what it does before the decisions (phase 1, optional) and
the first decision (the network the fine and topology decisions start from)."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

from nas.core import stop
from nas.core.config import parse
from nas.core.distributed import DistEnv, cleanup, guard_peers
from nas.core.errors import UserError, run_cli

if TYPE_CHECKING:
    from nas.search.driver import SearchRun

# the modules that register the built-in methods; a new method is one module and one entry here
BUILTIN = ("nas.search.evolutionary", "nas.search.supernet")


@dataclass(frozen=True)
class SearchMethod:
    name: str
    config: type                   # a SearchConfig subclass with the method's own flags
    start_name: str                # name of decision 0 in logs and decisions.json
    # decision 0: (switches, trained network, its optimizer), given phase 1's result and the decision's seed
    start: Callable[..., tuple]
    phase1: Optional[Callable[["SearchRun"], Any]] = None  # work before the decisions; result has .seconds
    check: Optional[Callable[[Any, DistEnv], None]] = None  # flags that need the world size, checked early


METHODS: dict[str, SearchMethod] = {}


def register(method: SearchMethod) -> SearchMethod:
    METHODS[method.name] = method
    return method


def get_method(name: str) -> SearchMethod:
    for module in BUILTIN:
        importlib.import_module(module)
    if name not in METHODS:
        raise UserError(f"unknown search method {name!r}: expected one of {', '.join(sorted(METHODS))}")
    return METHODS[name]


def run_search(name: str, cfg, given: Optional[dict] = None) -> "SearchRun":
    from nas.search.driver import SearchRun

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
            cleanup()
            stop.disarm()

    run_cli(go)
