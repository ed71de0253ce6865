"""Switches: the set of active operations on each of the 14 edges of the searched cell.

Switches are immutable: a tuple of 14 tuples of op names, kept in the primitives order
so that equal sets compare equal. An empty tuple is an edge with no operation.
"""

from __future__ import annotations

import random
from typing import Iterable, Sequence

from nas.core.errors import UserError
from nas.space.primitives import NUM_EDGES, PRIMITIVES

Switches = tuple[tuple[str, ...], ...]


def make_switches(edges: Sequence[Iterable[str]], primitives: Sequence[str] = PRIMITIVES) -> Switches:
    """Validate and normalise per-edge op sets (order follows `primitives`)."""
    if len(edges) != NUM_EDGES:
        raise UserError(f"switches have {len(edges)} edges: expected {NUM_EDGES}")
    out = []
    for e, ops in enumerate(edges):
        ops = set(ops)
        unknown = ops - set(primitives)
        if unknown:
            raise UserError(
                f"edge {e} has unknown operation(s) {sorted(unknown)}: expected a subset of {list(primitives)}"
            )
        out.append(tuple(p for p in primitives if p in ops))
    return tuple(out)


def full_switches(primitives: Sequence[str] = PRIMITIVES) -> Switches:
    """Every operation on every edge: the supernet."""
    return tuple(tuple(primitives) for _ in range(NUM_EDGES))


def random_switches(op_cap: int, rng: random.Random, primitives: Sequence[str] = PRIMITIVES) -> Switches:
    """`op_cap` operations per edge, drawn without replacement from `rng`."""
    if not 1 <= op_cap <= len(primitives):
        raise UserError(f"--op_cap {op_cap} out of range: expected 1..{len(primitives)}")
    return make_switches([rng.sample(list(primitives), op_cap) for _ in range(NUM_EDGES)], primitives)


def with_edge(switches: Switches, edge: int, ops: Iterable[str], primitives: Sequence[str] = PRIMITIVES) -> Switches:
    """A copy of `switches` with edge `edge` set to `ops`."""
    edges = list(switches)
    edges[edge] = tuple(ops)
    return make_switches(edges, primitives)


def to_lists(switches: Switches) -> list[list[str]]:
    """JSON/YAML-friendly form."""
    return [list(ops) for ops in switches]
