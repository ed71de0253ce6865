"""Candidate operations, as DARTS defines them.

`OPS[name](C, stride, affine)` builds an operation mapping C channels to C channels;
stride 2 halves the resolution. The search network uses affine=False (docs/method.md, "The search network").
"""

from __future__ import annotations

import torch
import torch.nn as nn

from nas.space.primitives import slot_op


class ReLUConvBN(nn.Sequential):
    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int, affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class DilConv(nn.Sequential):
    """ReLU, depthwise kxk (dilated), pointwise 1x1, BN."""

    def __init__(self, C_in, C_out, kernel_size, stride, padding, dilation, affine=True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride, padding, dilation=dilation, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, kernel_size=1, padding=0, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """Two stacked (ReLU, depthwise kxk, pointwise 1x1, BN); only the first has the stride."""

    def __init__(self, C_in, C_out, kernel_size, stride, padding, affine=True):
        super().__init__(
            DilConv(C_in, C_in, kernel_size, stride, padding, dilation=1, affine=affine),
            DilConv(C_in, C_out, kernel_size, 1, padding, dilation=1, affine=affine),
        )


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Zero(nn.Module):
    """The `none` placeholder: zeros of the output shape (used only by eval cells that ask for it)."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Halves the resolution with two offset stride-2 1x1 convolutions, concatenated."""

    def __init__(self, C_in: int, C_out: int, affine: bool = True):
        super().__init__()
        if C_out % 2:
            raise ValueError(f"FactorizedReduce needs an even number of output channels, got {C_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        # Pad so that odd resolutions reduce like the stride-2 convolutions do (ceil).
        shifted = nn.functional.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
        out = torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1)
        return self.bn(out)


def _pool(kind: str, stride: int) -> nn.Module:
    if kind == "max":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)


OPS = {
    "none": lambda C, stride, affine: Zero(stride),
    "max_pool_3x3": lambda C, stride, affine: _pool("max", stride),
    "avg_pool_3x3": lambda C, stride, affine: _pool("avg", stride),
    "skip_connect": lambda C, stride, affine: Identity() if stride == 1 else FactorizedReduce(C, C, affine=affine),
    "sep_conv_3x3": lambda C, stride, affine: SepConv(C, C, 3, stride, 1, affine=affine),
    "sep_conv_5x5": lambda C, stride, affine: SepConv(C, C, 5, stride, 2, affine=affine),
    "sep_conv_7x7": lambda C, stride, affine: SepConv(C, C, 7, stride, 3, affine=affine),
    "dil_conv_3x3": lambda C, stride, affine: DilConv(C, C, 3, stride, 2, 2, affine=affine),
    "dil_conv_5x5": lambda C, stride, affine: DilConv(C, C, 5, stride, 4, 2, affine=affine),
}


def build_op(name: str, C: int, stride: int, affine: bool = True, pool_bn: bool = False) -> nn.Module:
    """One candidate operation. The search network asks for pool_bn: a non-affine BN after
    each pool, so that parameter-free pools are on the same scale as the convolutions. A slot
    name (the original's duplicate dil_conv_5x5) builds its operation, with weights of its own."""
    name = slot_op(name)
    if name not in OPS:
        raise ValueError(f"unknown operation {name!r}: expected one of {', '.join(sorted(OPS))}")
    op = OPS[name](C, stride, affine)
    if pool_bn and "pool" in name:
        op = nn.Sequential(op, nn.BatchNorm2d(C, affine=False))
    return op
