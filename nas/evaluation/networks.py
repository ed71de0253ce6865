"""The evaluation networks of DARTS (SPEC §7), built from a genotype.

`NetworkCIFAR` and `NetworkImageNet` follow the DARTS reference implementation so that
parameter counts match the published ones; the auxiliary head is the submodule
`auxiliary_head` (profiling leaves it out). The training loop sets `drop_path_prob`
each epoch (held in a tensor, so that a compiled or captured step reads the new value
without being recompiled); forward returns `(logits, logits_aux)`, `logits_aux` None
unless training with the auxiliary head.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn as nn

from nas.core.errors import UserError
from nas.space.operations import OPS, FactorizedReduce, Identity, ReLUConvBN
from nas.space.primitives import reduction_cells


def drop_path(x: torch.Tensor, drop_prob: float | torch.Tensor) -> torch.Tensor:
    """Zero whole samples with probability drop_prob (one Bernoulli draw per sample),
    scaling the kept ones by 1/keep so the expectation is unchanged."""
    keep_prob = 1.0 - drop_prob
    mask = x.new_empty((x.size(0), 1, 1, 1)).bernoulli_(keep_prob).div_(keep_prob)
    return x * mask


def _build_cell_op(name: str, C: int, stride: int, cell_kind: str) -> nn.Module:
    if name not in OPS:
        raise UserError(
            f"the {cell_kind} cell has operation {name!r}, which the evaluation network cannot build: "
            f"expected one of {', '.join(sorted(OPS))}"
        )
    return OPS[name](C, stride, True)


class Cell(nn.Module):
    """A normal or reduction cell: pairs 2k, 2k+1 of `ops` feed intermediate node k."""

    def __init__(
        self,
        ops: Sequence[tuple[str, int]],
        concat: Sequence[int],
        C_prev_prev: int,
        C_prev: int,
        C: int,
        reduction: bool,
        reduction_prev: bool,
    ):
        super().__init__()
        kind = "reduction" if reduction else "normal"
        if not ops or len(ops) % 2:
            raise UserError(f"the {kind} cell has {len(ops)} (op, input) pairs: expected two per intermediate node")
        self.reduction = reduction
        # After a reduction cell, s0 is at twice the resolution of s1.
        self.preprocess0 = FactorizedReduce(C_prev_prev, C) if reduction_prev else ReLUConvBN(C_prev_prev, C, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(C_prev, C, 1, 1, 0)

        self.op_names = tuple(name for name, _ in ops)
        self.indices = tuple(int(index) for _, index in ops)
        self.steps = len(ops) // 2
        self.ops = nn.ModuleList()
        for k, (name, index) in enumerate(zip(self.op_names, self.indices)):
            num_states = 2 + k // 2
            if not 0 <= index < num_states:
                raise UserError(f"the {kind} cell feeds node {k // 2} from input {index}: expected 0..{num_states - 1}")
            stride = 2 if reduction and index < 2 else 1
            self.ops.append(_build_cell_op(name, C, stride, kind))
        self.concat = tuple(int(i) for i in concat)
        if not self.concat or any(not 0 <= i < 2 + self.steps for i in self.concat):
            raise UserError(
                f"the {kind} cell concatenates nodes {list(self.concat)}: expected indices 0..{1 + self.steps}"
            )
        self.multiplier = len(self.concat)
        # Drop-path spares identities: dropping a skip would only drop the input itself.
        self._droppable = tuple(not isinstance(op, Identity) for op in self.ops)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: Optional[torch.Tensor]) -> torch.Tensor:
        """`drop_prob`: the drop-path probability (a 0-d tensor), None for no drop-path."""
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        apply_drop = self.training and drop_prob is not None
        for step in range(self.steps):
            node = None
            for k in (2 * step, 2 * step + 1):
                h = self.ops[k](states[self.indices[k]])
                if apply_drop and self._droppable[k]:
                    h = drop_path(h, drop_prob)
                node = h if node is None else node + h
            states.append(node)
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHead(nn.Module):
    """Auxiliary classifier after the second reduction cell: 8x8 features on CIFAR (32x32 input,
    pooled with stride 3), 7x7 on ImageNet (224 input, stride 2). The BN after the 2x2
    convolution is the original's on both (DARTS dropped it on ImageNet; docs/method.md,
    "Evaluation")."""

    def __init__(self, C: int, num_classes: int, *, pool_stride: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=False),  # its input is also the next cell's input
            nn.AvgPool2d(5, stride=pool_stride, padding=0, count_include_pad=False),  # -> 2x2
            nn.Conv2d(C, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.classifier(x.flatten(1))


class _EvalNetwork(nn.Module):
    """Shared cell stack: `layers` cells, reductions (doubled channels) at layers//3 and 2*layers//3."""

    def __init__(self):
        super().__init__()
        # Not in the state dict: checkpoints stay as they were; the run sets it every epoch.
        self.register_buffer("drop_prob_tensor", torch.zeros(()), persistent=False)
        self.drop_path_prob = 0.0

    @property
    def drop_path_prob(self) -> float:
        return self._drop_path_prob

    @drop_path_prob.setter
    def drop_path_prob(self, p: float) -> None:
        # Updated in place: a compiled graph or a captured CUDA graph reads this tensor at
        # every step, and specialises only on whether drop-path is on at all.
        self._drop_path_prob = float(p)
        self._drop_path_on = self._drop_path_prob > 0.0
        self.drop_prob_tensor.fill_(self._drop_path_prob)

    def _build_cells(self, genotype, C_prev_prev: int, C_prev: int, C: int, layers: int, reduction_prev: bool) -> int:
        if layers < 3:
            raise UserError(f"layers={layers}: expected at least 3 (two of them are reduction cells)")
        self._layers = layers
        self._aux_position = reduction_cells(layers)[1]  # after the second reduction
        self.cells = nn.ModuleList()
        C_aux = C_prev
        for i in range(layers):
            reduction = i in reduction_cells(layers)
            if reduction:
                C *= 2
            ops, concat = (
                (genotype.reduce, genotype.reduce_concat) if reduction else (genotype.normal, genotype.normal_concat)
            )
            cell = Cell(ops, concat, C_prev_prev, C_prev, C, reduction, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            C_prev_prev, C_prev = C_prev, cell.multiplier * C
            if i == self._aux_position:
                C_aux = C_prev
        self._C_aux = C_aux
        return C_prev

    def _run_cells(self, s0: torch.Tensor, s1: torch.Tensor):
        logits_aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_prob_tensor if self._drop_path_on else None)
            if i == self._aux_position and self.auxiliary_head is not None and self.training:
                logits_aux = self.auxiliary_head(s1)
        return s1, logits_aux


class NetworkCIFAR(_EvalNetwork):
    """DARTS CIFAR network: stem Conv3x3 (3 -> 3C) + BN, `layers` cells, global pool, linear."""

    image_size = 32  # the auxiliary head assumes 8x8 features after the second reduction

    def __init__(self, C: int, num_classes: int, layers: int, auxiliary: bool, genotype):
        super().__init__()
        C_stem = 3 * C
        self.stem = nn.Sequential(nn.Conv2d(3, C_stem, 3, padding=1, bias=False), nn.BatchNorm2d(C_stem))
        C_prev = self._build_cells(genotype, C_stem, C_stem, C, layers, reduction_prev=False)
        self.auxiliary_head = AuxiliaryHead(self._C_aux, num_classes, pool_stride=3) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, num_classes)

    def forward(self, x: torch.Tensor):
        s = self.stem(x)
        s, logits_aux = self._run_cells(s, s)
        logits = self.classifier(self.global_pooling(s).flatten(1))
        return logits, logits_aux


class NetworkImageNet(_EvalNetwork):
    """DARTS ImageNet network: two-stage stem (stride 8 in all), `layers` cells, 7x7 average
    pool at 224 input. `image_size` (a multiple of 32) sets that pool for other resolutions."""

    def __init__(self, C: int, num_classes: int, layers: int, auxiliary: bool, genotype, image_size: int = 224):
        super().__init__()
        if image_size % 32:
            raise UserError(f"image_size={image_size}: expected a multiple of 32 (the network reduces by 32)")
        self.image_size = image_size
        self.stem0 = nn.Sequential(
            nn.Conv2d(3, C // 2, kernel_size=3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(C // 2, C, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C),
        )
        self.stem1 = nn.Sequential(
            nn.ReLU(inplace=False),  # stem0's output is also the first cell's s0
            nn.Conv2d(C, C, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C),
        )
        # stem0's output is at twice stem1's resolution, as after a reduction cell.
        C_prev = self._build_cells(genotype, C, C, C, layers, reduction_prev=True)
        self.auxiliary_head = AuxiliaryHead(self._C_aux, num_classes, pool_stride=2) if auxiliary else None
        self.global_pooling = nn.AvgPool2d(image_size // 32)
        self.classifier = nn.Linear(C_prev, num_classes)

    def forward(self, x: torch.Tensor):
        s0 = self.stem0(x)
        s1 = self.stem1(s0)
        s, logits_aux = self._run_cells(s0, s1)
        logits = self.classifier(self.global_pooling(s).flatten(1))
        return logits, logits_aux
