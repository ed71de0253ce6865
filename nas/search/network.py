"""The search network (docs/method.md, "The search network"): a DARTS-style stack of one searched cell type whose
edges hold plain sums of their active operations — no architecture weights.

A perturbation switches an operation (or a whole edge) off in every cell; switched-off
operations are skipped in the forward pass (`off_ops="skip"`), or computed and multiplied by
zero as the original did (`"zero"`: weight decay, momentum and BN statistics still move them).
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Optional, Sequence

import torch
import torch.nn as nn

from nas.space.operations import FactorizedReduce, ReLUConvBN, build_op
from nas.space.primitives import NUM_EDGES, NUM_INPUTS, NUM_NODES, edge_source, edges_of_node, reduction_cells
from nas.space.primitives import primitives as all_primitives
from nas.space.switches import Switches, make_switches


class MixedEdge(nn.Module):
    """One edge: the sum of its active operations, or None when none is active."""

    def __init__(self, C: int, stride: int, ops: Sequence[str], off_ops: str = "skip"):
        super().__init__()
        self.ops = nn.ModuleDict({name: build_op(name, C, stride, affine=False, pool_bn=True) for name in ops})
        self.disabled: set[str] = set()
        self.zero_disabled = off_ops == "zero"

    def forward(self, x: torch.Tensor) -> Optional[torch.Tensor]:
        out = None
        for name, op in self.ops.items():
            if name in self.disabled:
                if not self.zero_disabled:
                    continue  # not computed at all: a perturbation costs nothing
                y = op(x) * 0.0
            else:
                y = op(x)
            out = y if out is None else out + y
        return out


class SearchCell(nn.Module):
    def __init__(
        self,
        switches: Switches,
        C_pp: int,
        C_p: int,
        C: int,
        reduction: bool,
        reduction_prev: bool,
        off_ops: str = "skip",
    ):
        super().__init__()
        self.reduction = reduction
        self.C = C
        if reduction_prev:
            self.preprocess0 = FactorizedReduce(C_pp, C, affine=False)
        else:
            self.preprocess0 = ReLUConvBN(C_pp, C, 1, 1, 0, affine=False)
        self.preprocess1 = ReLUConvBN(C_p, C, 1, 1, 0, affine=False)
        self.edges = nn.ModuleList(
            MixedEdge(C, 2 if reduction and edge_source(e) < NUM_INPUTS else 1, switches[e], off_ops)
            for e in range(NUM_EDGES)
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for node in range(NUM_NODES):
            terms = [t for e in edges_of_node(node) if (t := self.edges[e](states[edge_source(e)])) is not None]
            states.append(sum(terms[1:], terms[0]) if terms else self._zeros_like_node(states[1]))
        return torch.cat(states[NUM_INPUTS:], dim=1)

    def _zeros_like_node(self, s: torch.Tensor) -> torch.Tensor:
        """A node with no active input edge outputs zeros of the node's shape."""
        n, _, h, w = s.shape
        if self.reduction:
            h, w = (h + 1) // 2, (w + 1) // 2
        fmt = torch.channels_last if s.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        return torch.zeros(n, self.C, h, w, dtype=s.dtype, device=s.device).contiguous(memory_format=fmt)


def stem_reductions(image_size: int) -> int:
    """Stride-2 convolutions the search stem puts before the cells so that they work at about
    28-32 px, the resolution the search space was designed at: 0 up to 55 px, 1 at 64, 2 at 128,
    3 at 224 (-> 28, as the ImageNet evaluation network's stem)."""
    halvings, side = 0, image_size
    while -(-side // 2) >= 28:
        side, halvings = -(-side // 2), halvings + 1
    return halvings


class SearchNetwork(nn.Module):
    """Stem (3x3 conv to 3C + BN), `layers` cells with reductions at L//3 and 2L//3, GAP, linear.

    All cells, reduction cells included, take their edges' operation sets from `switches`;
    `off_ops` says how a switched-off operation runs (skip or zero, module docstring).
    Above 55 px the stem first halves the input with stride-2 3x3 conv + BN + ReLU blocks
    (`stem_reductions`); at 32 px the network is the original's.
    """

    def __init__(
        self,
        C: int,
        num_classes: int,
        layers: int,
        switches: Sequence[Sequence[str]],
        stem_multiplier: int = 3,
        primitives: Optional[Sequence[str]] = None,
        off_ops: str = "skip",
        image_size: int = 32,
    ):
        super().__init__()
        self.switches: Switches = make_switches(switches, primitives or all_primitives(extra_ops=True))
        C_curr = stem_multiplier * C
        reduce = []
        for i in range(stem_reductions(image_size)):
            reduce += [
                nn.Conv2d(3 if i == 0 else C_curr, C_curr, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(C_curr),
                nn.ReLU(inplace=True),
            ]
        self.stem = nn.Sequential(
            *reduce, nn.Conv2d(C_curr if reduce else 3, C_curr, 3, padding=1, bias=False), nn.BatchNorm2d(C_curr)
        )
        C_pp, C_p, C_curr = C_curr, C_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in reduction_cells(layers)
            if reduction:
                C_curr *= 2
            self.cells.append(SearchCell(self.switches, C_pp, C_p, C_curr, reduction, reduction_prev, off_ops))
            reduction_prev = reduction
            C_pp, C_p = C_p, NUM_NODES * C_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_p, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(self.global_pooling(s1).flatten(1))

    def _edges(self, edge: int) -> Iterator[MixedEdge]:
        for cell in self.cells:
            yield cell.edges[edge]

    @contextlib.contextmanager
    def switched_off(self, edge: int, op: Optional[str] = None):
        """Temporarily switch off operation `op` of `edge` (the whole edge when op is None) in every cell."""
        if op is not None and op not in self.switches[edge]:
            raise ValueError(f"operation {op!r} is not on edge {edge}: it has {list(self.switches[edge])}")
        names = {op} if op is not None else set(self.switches[edge])
        edges = list(self._edges(edge))
        saved = [set(m.disabled) for m in edges]
        for m in edges:
            m.disabled |= names
        try:
            yield self
        finally:
            for m, s in zip(edges, saved):
                m.disabled = s


def inherit_weights(new: nn.Module, old: nn.Module) -> int:
    """Copy every parameter and buffer of `old` whose name and shape `new` shares (the optional
    weight inheritance across switch changes). Operation modules are named by edge and op, so
    surviving operations keep their weights. Returns the number of tensors copied."""
    old_state = old.state_dict()
    new_state = new.state_dict()
    shared = {k: v for k, v in old_state.items() if k in new_state and new_state[k].shape == v.shape}
    new.load_state_dict(shared, strict=False)
    return len(shared)
