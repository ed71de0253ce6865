"""Model size and cost: parameters (millions, auxiliary head excluded) and MACs.

MACs come from torch.utils.flop_counter, which counts the matrix products and
convolutions (not pools, BN or activations), the convention of the published
"mobile setting" figures. The auxiliary head only runs in training, so it is left out
of both figures.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

AUXILIARY = "auxiliary_head"


def count_parameters_m(model: nn.Module) -> float:
    """Parameters in millions, excluding any parameter under a module named `auxiliary_head`."""
    total = sum(p.numel() for name, p in model.named_parameters() if AUXILIARY not in name.split("."))
    return total / 1e6


def count_macs(model: nn.Module, input_size: tuple[int, ...] = (1, 3, 32, 32)) -> float:
    """Multiply-accumulates (millions) of one forward pass on a tensor of `input_size`,
    in eval mode without gradients; the model's training mode is restored afterwards."""
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(input_size, device=device, dtype=dtype))
    finally:
        model.train(was_training)
    return counter.get_total_flops() / 2 / 1e6
