"""The evaluation network with torch alone: the code `python -m nas.genotype export` writes
into a standalone file, after the genotype and the network's settings (nas/genotype/export.py).

It imports nothing of this package, so a cell found here can serve in another code base (a
detection backbone, a deployment). Its modules are named as nas/evaluation/networks.py's,
so the state dict of a `checkpoints/model_best.pt` loads unchanged (tests/genotype/test_export.py
builds both from the same weights and compares their outputs). Inference-first: drop-path is
off unless `drop_path_prob` is set; forward returns the logits, and (logits, auxiliary logits)
only when training with the auxiliary head.
"""

# ---- standalone code: everything below is copied into the exported file ----
import torch
import torch.nn as nn


def drop_path(x, drop_prob: float):
    keep_prob = 1.0 - drop_prob
    mask = x.new_empty((x.size(0), 1, 1, 1)).bernoulli_(keep_prob).div_(keep_prob)
    return x * mask


class ReLUConvBN(nn.Sequential):
    def __init__(self, C_in, C_out, kernel_size, stride, padding):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel_size, stride, padding, bias=False),
            nn.BatchNorm2d(C_out),
        )


class DilConv(nn.Sequential):
    def __init__(self, C_in, C_out, kernel_size, stride, padding, dilation):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride, padding, dilation=dilation, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, 1, bias=False),
            nn.BatchNorm2d(C_out),
        )


class SepConv(nn.Sequential):
    def __init__(self, C_in, C_out, kernel_size, stride, padding):
        super().__init__(
            DilConv(C_in, C_in, kernel_size, stride, padding, 1), DilConv(C_in, C_out, kernel_size, 1, padding, 1)
        )


class Identity(nn.Module):
    def forward(self, x):
        return x


class Zero(nn.Module):
    def __init__(self, stride):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        return x.mul(0.0) if self.stride == 1 else x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    def __init__(self, C_in, C_out):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(C_out)

    def forward(self, x):
        x = self.relu(x)
        shifted = nn.functional.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


OPS = {
    "none": lambda C, stride: Zero(stride),
    "max_pool_3x3": lambda C, stride: nn.MaxPool2d(3, stride=stride, padding=1),
    "avg_pool_3x3": lambda C, stride: nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False),
    "skip_connect": lambda C, stride: Identity() if stride == 1 else FactorizedReduce(C, C),
    "sep_conv_3x3": lambda C, stride: SepConv(C, C, 3, stride, 1),
    "sep_conv_5x5": lambda C, stride: SepConv(C, C, 5, stride, 2),
    "sep_conv_7x7": lambda C, stride: SepConv(C, C, 7, stride, 3),
    "dil_conv_3x3": lambda C, stride: DilConv(C, C, 3, stride, 2, 2),
    "dil_conv_5x5": lambda C, stride: DilConv(C, C, 5, stride, 4, 2),
}


class Cell(nn.Module):
    """Pairs 2k, 2k+1 of `ops` ((operation, input) pairs) feed intermediate node k."""

    def __init__(self, ops, concat, C_prev_prev, C_prev, C, reduction, reduction_prev):
        super().__init__()
        self.preprocess0 = FactorizedReduce(C_prev_prev, C) if reduction_prev else ReLUConvBN(C_prev_prev, C, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(C_prev, C, 1, 1, 0)
        self.indices = [index for _, index in ops]
        self.ops = nn.ModuleList(OPS[name](C, 2 if reduction and index < 2 else 1) for name, index in ops)
        self.concat = list(concat)
        self.multiplier = len(self.concat)

    def forward(self, s0, s1, drop_prob=0.0):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for k in range(0, len(self.ops), 2):
            node = None
            for op, index in zip(self.ops[k : k + 2], self.indices[k : k + 2]):
                h = op(states[index])
                if self.training and drop_prob > 0 and not isinstance(op, Identity):
                    h = drop_path(h, drop_prob)
                node = h if node is None else node + h
            states.append(node)
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHead(nn.Module):
    def __init__(self, C, num_classes, pool_stride):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.AvgPool2d(5, stride=pool_stride, padding=0, count_include_pad=False),
            nn.Conv2d(C, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class Network(nn.Module):
    """`network` "cifar" (3x3 stem, 32 px) or "imagenet" (two-stage stride-8 stem, `image_size` px);
    `layers` cells, reduction cells (doubled channels) at layers//3 and 2*layers//3."""

    def __init__(self, genotype, network="cifar", C=36, num_classes=10, layers=20, auxiliary=True, image_size=32):
        super().__init__()
        self.network = network
        self.drop_path_prob = 0.0
        if network == "cifar":
            self.stem = nn.Sequential(nn.Conv2d(3, 3 * C, 3, padding=1, bias=False), nn.BatchNorm2d(3 * C))
            C_prev_prev = C_prev = 3 * C
            reduction_prev = False
        else:
            self.stem0 = nn.Sequential(
                nn.Conv2d(3, C // 2, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(C // 2),
                nn.ReLU(inplace=True),
                nn.Conv2d(C // 2, C, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(C),
            )
            self.stem1 = nn.Sequential(
                nn.ReLU(inplace=False), nn.Conv2d(C, C, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C)
            )
            C_prev_prev = C_prev = C
            reduction_prev = True
        self.aux_position = 2 * layers // 3
        self.cells = nn.ModuleList()
        C_cell, C_aux = C, C_prev
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            C_cell = C_cell * 2 if reduction else C_cell
            cell = Cell(
                genotype["reduce"] if reduction else genotype["normal"],
                genotype["reduce_concat"] if reduction else genotype["normal_concat"],
                C_prev_prev,
                C_prev,
                C_cell,
                reduction,
                reduction_prev,
            )
            self.cells.append(cell)
            reduction_prev = reduction
            C_prev_prev, C_prev = C_prev, cell.multiplier * C_cell
            if i == self.aux_position:
                C_aux = C_prev
        self.auxiliary_head = AuxiliaryHead(C_aux, num_classes, 3 if network == "cifar" else 2) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1) if network == "cifar" else nn.AvgPool2d(image_size // 32)
        self.classifier = nn.Linear(C_prev, num_classes)

    def forward(self, x):
        if self.network == "cifar":
            s0 = s1 = self.stem(x)
        else:
            s0 = self.stem0(x)
            s1 = self.stem1(s0)
        logits_aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.aux_position and self.auxiliary_head is not None and self.training:
                logits_aux = self.auxiliary_head(s1)
        logits = self.classifier(self.global_pooling(s1).flatten(1))
        return logits if logits_aux is None else (logits, logits_aux)
