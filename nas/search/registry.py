"""The registry of search methods. A method is one module that registers a `SearchMethod`:
its name, its config class, what it does before the decisions (phase 1, optional) and
the first decision (the network the fine and topology decisions start from). The launcher
that runs a method is nas.search.launch."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Optional

from nas.core.distributed import DistEnv
from nas.core.errors import UserError

# the modules that register the built-in methods; a new method is one module and one entry here
BUILTIN = ("nas.search.evolutionary", "nas.search.supernet")


@dataclass(frozen=True)
class SearchMethod:
    name: str
    config: type  # a SearchConfig subclass with the method's own flags
    start_name: str  # name of decision 0 in logs and decisions.json
    # decision 0: (switches, trained network, its optimizer), given phase 1's result and the decision's seed
    start: Callable[..., tuple]
    phase1: Optional[Callable[[Any], Any]] = None  # work before the decisions, given the SearchRun; result has .seconds
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
