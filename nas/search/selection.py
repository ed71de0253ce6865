"""Selection rules of the search (docs/method.md, "The evolutionary search"), on perturbation scores.

A score is acc_after - acc_before for switching a candidate off: the more negative, the
more the candidate matters, so every rule keeps the lowest scores. Ties go to the
earlier operation (primitives order) or the earlier edge.
"""

from __future__ import annotations

import random
from typing import Mapping, Sequence

import numpy as np

from nas.space.primitives import NUM_EDGES, edges_of_node
from nas.space.switches import Switches, make_switches, with_edge


def coarse_select(valuation: np.ndarray, primitives: Sequence[str], keep: int = 2) -> Switches:
    """Keep, on every edge, the `keep` operations with the lowest average score."""
    valuation = np.asarray(valuation, dtype=float)
    if valuation.shape != (NUM_EDGES, len(primitives)):
        raise ValueError(f"valuation matrix has shape {valuation.shape}: expected ({NUM_EDGES}, {len(primitives)})")
    if np.isnan(valuation).any():
        raise ValueError("valuation matrix has missing entries (NaN): phase 1 is incomplete")
    rows = [np.argsort(row, kind="stable")[:keep] for row in valuation]
    return make_switches([[primitives[i] for i in row] for row in rows], primitives)


def fine_select(switches: Switches, edge: int, scores: Mapping[str, float], primitives: Sequence[str]) -> Switches:
    """Keep the single operation of `edge` with the lowest score."""
    ops = switches[edge]
    if set(scores) != set(ops):
        raise ValueError(f"scores for {sorted(scores)} but edge {edge} has {list(ops)}")
    best = min(ops, key=lambda op: (scores[op], ops.index(op)))
    return with_edge(switches, edge, [best], primitives)


def topology_select(
    switches: Switches, node: int, scores: Mapping[int, float], primitives: Sequence[str], keep: int = 2
) -> Switches:
    """Keep the `keep` incoming edges of `node` with the lowest scores; drop the others."""
    edges = list(edges_of_node(node))
    if set(scores) != set(edges):
        raise ValueError(f"scores for edges {sorted(scores)} but node {node} has edges {edges}")
    kept = sorted(edges, key=lambda e: (scores[e], e))[:keep]
    out = switches
    for e in edges:
        if e not in kept:
            out = with_edge(out, e, [], primitives)
    return out


def topology_node_order(seed: int) -> list[int]:
    """Nodes 1, 2, 3 in a seeded random order (node 0 keeps both of its edges)."""
    order = [1, 2, 3]
    random.Random(seed).shuffle(order)
    return order


def check_topology_ready(switches: Switches, node: int) -> None:
    """Topology selection follows the fine selection: at most one operation per edge, and
    one on every incoming edge of the node being decided."""
    counts = [len(ops) for ops in switches]
    if any(c > 1 for c in counts) or any(counts[e] != 1 for e in edges_of_node(node)):
        raise ValueError(f"topology selection of node {node} needs one operation per edge, got {counts}")
