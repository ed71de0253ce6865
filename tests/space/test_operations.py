import math

import pytest
import torch
import torch.nn as nn

from nas.space.operations import OPS, DilConv, FactorizedReduce, Identity, ReLUConvBN, SepConv, Zero, build_op
from nas.space.primitives import EXTRA_PRIMITIVES, NONE, PRIMITIVES

ALL_OPS = (NONE,) + PRIMITIVES + EXTRA_PRIMITIVES


def test_ops_cover_the_search_space():
    assert set(ALL_OPS) == set(OPS)


@pytest.mark.parametrize("name", ALL_OPS)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [8, 7])
@pytest.mark.parametrize("affine", [True, False])
def test_op_keeps_channels_and_strides(name, stride, size, affine):
    op = build_op(name, 4, stride, affine=affine)
    x = torch.randn(2, 4, size, size, requires_grad=True)
    y = op(x)
    out = size if stride == 1 else math.ceil(size / 2)
    assert y.shape == (2, 4, out, out)
    y.sum().backward()  # every op is differentiable (none gives zero gradients)
    assert x.grad.shape == x.shape


def test_stride_2_skip_is_factorized_reduce_and_stride_1_is_identity():
    assert isinstance(build_op("skip_connect", 4, 1), Identity)
    assert isinstance(build_op("skip_connect", 4, 2), FactorizedReduce)


def test_avg_pool_excludes_padding_from_the_count():
    y = build_op("avg_pool_3x3", 3, 1)(torch.ones(1, 3, 5, 5))
    assert torch.allclose(y, torch.ones_like(y))


def test_sep_conv_is_two_stacked_blocks_with_stride_on_the_first():
    op = build_op("sep_conv_5x5", 4, 2)
    assert isinstance(op, SepConv) and len(op) == 2
    first, second = op
    assert isinstance(first, DilConv) and isinstance(second, DilConv)
    assert first[1].stride == (2, 2) and second[1].stride == (1, 1)
    assert first[1].kernel_size == (5, 5) and first[1].groups == 4


def test_dil_conv_has_dilation_2():
    op = build_op("dil_conv_3x3", 4, 1)
    assert op[1].dilation == (2, 2) and op[1].groups == 4


def test_affine_false_has_no_bn_parameters():
    op = build_op("sep_conv_3x3", 4, 1, affine=False)
    bns = [m for m in op.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(bn.weight is None for bn in bns)


def test_pool_bn_follows_pools_only():
    pool = build_op("max_pool_3x3", 4, 1, affine=False, pool_bn=True)
    assert isinstance(pool, nn.Sequential) and isinstance(pool[1], nn.BatchNorm2d) and not pool[1].affine
    conv = build_op("sep_conv_3x3", 4, 1, affine=False, pool_bn=True)
    assert isinstance(conv, SepConv)


def test_zero_outputs_zeros_of_the_output_shape():
    y = Zero(2)(torch.randn(1, 3, 6, 6))
    assert y.shape == (1, 3, 3, 3) and not y.any()


def test_relu_conv_bn_and_factorized_reduce_shapes():
    assert ReLUConvBN(6, 4, 1, 1, 0)(torch.randn(2, 6, 5, 5)).shape == (2, 4, 5, 5)
    assert FactorizedReduce(6, 4)(torch.randn(2, 6, 5, 5)).shape == (2, 4, 3, 3)


def test_factorized_reduce_needs_even_channels():
    with pytest.raises(ValueError, match="even"):
        FactorizedReduce(4, 3)


def test_unknown_operation_is_named():
    with pytest.raises(ValueError, match="conv_9x9"):
        build_op("conv_9x9", 4, 1)
