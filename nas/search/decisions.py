"""The decisions of phases 2-4 (docs/method.md): the method's start (coarse selection or
supernet training), the 14 fine decisions in the fixed edge order, then the 3 topology
decisions in a seeded node order. The sequence is data: a list of `Decision`s."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from nas.search.network import SearchNetwork
from nas.search.selection import check_topology_ready, fine_select, topology_node_order, topology_select
from nas.search.stages import Trainer
from nas.space.primitives import FINE_EDGE_ORDER, NUM_EDGES, edges_of_node
from nas.space.switches import Switches

START, FINE, TOPOLOGY = "start", "fine", "topology"
DECISION_COUNT = 1 + len(FINE_EDGE_ORDER) + 3  # the start, the fine decisions, the topology ones


@dataclass(frozen=True)
class Decision:
    index: int  # 0-based, for seeds and checkpoints; people read `number`
    kind: str  # START, FINE or TOPOLOGY
    target: Optional[int]  # FINE: the edge; TOPOLOGY: the node
    name: str  # as in logs, state.json and decisions.json

    @property
    def last(self) -> bool:
        return self.index == DECISION_COUNT - 1

    @property
    def number(self) -> int:
        """1-based, as logs, decisions.json, state.json and the report count decisions."""
        return self.index + 1

    @property
    def label(self) -> str:
        """'decision 5/18 (fine_edge11)': the one way every log line names a decision."""
        return f"decision {self.number}/{DECISION_COUNT} ({self.name})"


def plan(start_name: str, seed: int) -> list[Decision]:
    """`start_name` (the method's first decision), the fine edge decisions, the topology ones."""
    kinds = (
        [(START, None, start_name)]
        + [(FINE, e, f"fine_edge{e}") for e in FINE_EDGE_ORDER]
        + [(TOPOLOGY, n, f"topology_node{n}") for n in topology_node_order(seed)]
    )
    return [Decision(i, kind, target, name) for i, (kind, target, name) in enumerate(kinds)]


def _scores(trainer: Trainer, net, optimizer, candidates, *, phase: int, decision: Decision, entry: dict) -> dict:
    res = trainer.perturb(net, optimizer, candidates, phase=phase, key=("decision", decision.index), parallel=True)
    entry["acc_before"] = res.acc_before
    for (edge, op), score in res.scores.items():
        trainer.tb.add_scalar(f"perturb/{decision.name}/edge{edge}" + (f"/{op}" if op else ""), score, decision.index)
    return res.scores


def fine_decision(
    trainer: Trainer,
    switches: Switches,
    net: SearchNetwork,
    optimizer: torch.optim.Optimizer,
    decision: Decision,
    entry: dict,
) -> Switches:
    """Keep the operation of the edge whose removal hurts most; fine-tunes with the last stage's
    optimizer (at its cosine floor), as the original did."""
    edge = decision.target
    ops = switches[edge]
    if len(ops) > 1:
        scores = _scores(trainer, net, optimizer, [(edge, op) for op in ops], phase=3, decision=decision, entry=entry)
        entry["scores"] = {op: scores[(edge, op)] for op in ops}
        switches = fine_select(switches, edge, entry["scores"], trainer.primitives)
    entry["selected"] = switches[edge][0] if switches[edge] else None
    entry["outcome"] = f"edge {edge} keeps {entry['selected']}"
    return switches


def topology_decision(
    trainer: Trainer, switches: Switches, net: SearchNetwork, decision: Decision, entry: dict
) -> Switches:
    """Keep the two incoming edges of the node whose removal hurts most. The original makes a
    fresh SGD (lr/2.5, empty momentum) before every topology decision, so the candidates
    fine-tune at that lr, not at the last stage's floor. `--topology_candidates all` perturbs
    every edge in index order first, as the original did (dropped edges and node 0's too:
    their fine-tuning moves the network the next candidate starts from under `accumulate`);
    the node's edges are then picked from those scores. decisions.json keeps every candidate's
    score in the order perturbed."""
    node = decision.target
    check_topology_ready(switches, node)
    optimizer = trainer.make_optimizer(net, trainer.cfg.scaled_lr / 2.5)
    edges = list(edges_of_node(node))
    perturbed = list(range(NUM_EDGES)) if trainer.cfg.topology_candidates == "all" else edges
    scores = _scores(trainer, net, optimizer, [(e, None) for e in perturbed], phase=4, decision=decision, entry=entry)
    edge_scores = {e: scores[(e, None)] for e in edges}
    switches = topology_select(switches, node, edge_scores, trainer.primitives)
    entry["scores"] = {str(e): scores[(e, None)] for e in perturbed}
    entry["kept_edges"] = [e for e in edges if switches[e]]
    entry["outcome"] = f"node {node} keeps edges {entry['kept_edges']}"
    return switches


def renumber(history: list[dict]) -> list[dict]:
    """The history of a checkpoint written before decisions were counted from 1 (their
    entries hold a 0-based "decision" and no "decisions" total), counted the one way."""
    return [
        entry if "decisions" in entry else {**entry, "decision": entry["decision"] + 1, "decisions": DECISION_COUNT}
        for entry in history
    ]
