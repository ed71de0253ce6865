import pytest
import torch

import nas.evaluation.networks as eval_model
from nas.core.errors import UserError
from nas.evaluation.cost import count_parameters_m
from nas.evaluation.networks import Cell, NetworkCIFAR, NetworkImageNet, drop_path
from nas.genotype import Genotype, combine, load_genotype
from nas.space.operations import FactorizedReduce, Identity, ReLUConvBN

DARTS_V2 = load_genotype("DARTS_V2")


def tiny_cifar(auxiliary=False, genotype=DARTS_V2, layers=5):
    torch.manual_seed(0)
    return NetworkCIFAR(8, 10, layers, auxiliary, genotype)


def test_darts_v2_cifar10_parameters_match_darts():
    # DARTS reports 3.3 M; its own counter prints 3.349342 for these settings.
    assert count_parameters_m(NetworkCIFAR(36, 10, 20, True, DARTS_V2)) == pytest.approx(3.349342, abs=1e-6)


def test_darts_v2_imagenet_parameters_match_darts():
    assert count_parameters_m(NetworkImageNet(48, 1000, 14, True, DARTS_V2)) == pytest.approx(4.718752, abs=1e-6)


def test_cifar_layout_reductions_and_preprocessing():
    net = tiny_cifar(layers=8)
    assert [c.reduction for c in net.cells] == [i in (2, 5) for i in range(8)]
    for i, cell in enumerate(net.cells):
        after_reduction = i in (3, 6)
        assert isinstance(cell.preprocess0, FactorizedReduce if after_reduction else ReLUConvBN)
        assert isinstance(cell.preprocess1, ReLUConvBN)
    # Stride 2 exactly on the edges that leave the cell inputs of a reduction cell.
    reduction = net.cells[2]
    for op, index in zip(reduction.ops, reduction.indices):
        if index >= 2:
            continue
        strided = [m.stride for m in op.modules() if hasattr(m, "stride")]
        assert isinstance(op, FactorizedReduce) or 2 in strided or (2, 2) in strided


@pytest.mark.parametrize("auxiliary", [False, True])
def test_cifar_forward_backward_shapes(auxiliary):
    net = tiny_cifar(auxiliary)
    net.drop_path_prob = 0.2
    logits, logits_aux = net(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 10)
    if auxiliary:
        assert logits_aux.shape == (2, 10)
        (logits.sum() + logits_aux.sum()).backward()
        assert net.auxiliary_head.classifier.weight.grad is not None
    else:
        assert logits_aux is None
        logits.sum().backward()
    assert net.stem[0].weight.grad is not None
    net.eval()
    with torch.no_grad():
        logits, logits_aux = net(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 10) and logits_aux is None  # the auxiliary head only runs in training


def test_auxiliary_head_sits_after_the_second_reduction():
    net = tiny_cifar(auxiliary=True, layers=8)  # reductions at 2 and 5
    seen = []
    net.cells[5].register_forward_hook(lambda m, i, o: seen.append(o.shape))
    net.auxiliary_head.register_forward_pre_hook(lambda m, i: seen.append(i[0].shape))
    net(torch.randn(2, 3, 32, 32))
    assert seen[0] == seen[1] == (2, 4 * 32, 8, 8)


def test_auxiliary_head_layers():
    head = tiny_cifar(auxiliary=True).auxiliary_head.features
    pool = head[1]
    assert (pool.kernel_size, pool.stride, pool.padding, pool.count_include_pad) == (5, 3, 0, False)
    assert head[2].out_channels == 128 and head[5].out_channels == 768 and head[5].kernel_size == (2, 2)


def test_imagenet_auxiliary_head_keeps_the_batchnorm_after_its_second_convolution():
    def total(net):
        return sum(p.numel() for p in net.parameters())

    plain, aux = NetworkImageNet(48, 1000, 14, False, DARTS_V2), NetworkImageNet(48, 1000, 14, True, DARTS_V2)
    head = aux.auxiliary_head.features
    assert isinstance(head[5], torch.nn.Conv2d) and isinstance(head[6], torch.nn.BatchNorm2d)
    assert head[6].num_features == 768
    # C_aux = 768 at 48 channels: 1x1 conv + BN(128) + 2x2 conv + BN(768) + linear
    assert total(aux) - total(plain) == 768 * 128 + 2 * 128 + 128 * 768 * 4 + 2 * 768 + 768 * 1000 + 1000
    cifar = NetworkCIFAR(36, 10, 20, True, DARTS_V2)
    assert (
        sum(p.numel() for p in cifar.auxiliary_head.parameters())
        == 576 * 128 + 2 * 128 + 128 * 768 * 4 + 2 * 768 + 7690
    )


@pytest.mark.parametrize("auxiliary", [False, True])
def test_imagenet_forward_backward_shapes(auxiliary):
    torch.manual_seed(0)
    net = NetworkImageNet(8, 7, 3, auxiliary, DARTS_V2)
    logits, logits_aux = net(torch.randn(2, 3, 224, 224))
    assert logits.shape == (2, 7)
    assert (logits_aux.shape == (2, 7)) if auxiliary else logits_aux is None
    logits.sum().backward()
    assert net.stem0[0].weight.grad is not None
    assert net.global_pooling.kernel_size == 7


def test_imagenet_stem_has_stride_8_and_other_resolutions():
    net = NetworkImageNet(8, 5, 3, False, DARTS_V2, image_size=64)
    s0 = net.stem0(torch.randn(1, 3, 64, 64))
    assert s0.shape[-1] == 16 and net.stem1(s0).shape[-1] == 8
    assert isinstance(net.cells[0].preprocess0, FactorizedReduce)
    assert net(torch.randn(2, 3, 64, 64))[0].shape == (2, 5)
    with pytest.raises(UserError, match="image_size=100"):
        NetworkImageNet(8, 5, 3, False, DARTS_V2, image_size=100)


def test_channels_last_inputs_give_the_same_outputs():
    net = tiny_cifar(auxiliary=True).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = net(x)[0]
        net_cl = net.to(memory_format=torch.channels_last)
        out = net_cl(x.to(memory_format=torch.channels_last))[0]
    assert torch.allclose(ref, out, atol=1e-5)
    net.train()
    net.drop_path_prob = 0.3
    logits, aux = net(x.to(memory_format=torch.channels_last))
    (logits.sum() + aux.sum()).backward()


def test_drop_path_masks_whole_samples():
    torch.manual_seed(0)
    x = torch.ones(400, 3, 4, 4)
    y = drop_path(x, 0.25)
    per_sample = y.flatten(1)
    # Each sample is dropped entirely or kept and scaled by 1/keep.
    assert torch.all((per_sample == 0).all(1) | (per_sample == 1 / 0.75).all(1))
    kept = (per_sample != 0).all(1).float().mean().item()
    assert 0.65 < kept < 0.85


def test_drop_path_only_in_training_with_positive_probability(monkeypatch):
    calls = []
    real = eval_model.drop_path
    monkeypatch.setattr(eval_model, "drop_path", lambda x, p: calls.append(p) or real(x, p))
    net = tiny_cifar()
    x = torch.randn(2, 3, 32, 32)
    net.drop_path_prob = 0.0
    net(x)
    assert calls == []
    net.drop_path_prob = 0.3
    net.eval()
    with torch.no_grad():
        a, b = net(x)[0], net(x)[0]
    assert calls == [] and torch.equal(a, b)
    net.train()
    net(x)
    # DARTS_V2: 6 non-identity ops per normal cell (2 skips), 5 per reduction cell (its 3
    # skips read intermediate nodes, so they are identities too); 3 normal + 2 reduction cells.
    assert calls == [0.3] * (3 * 6 + 2 * 5)


def test_drop_path_spares_identities_and_drops_per_sample():
    torch.manual_seed(0)
    skips = tuple(("skip_connect", i) for i in (0, 1, 0, 1, 0, 1, 0, 1))
    cell = Cell(skips, (2, 3, 4, 5), 4, 4, 4, reduction=False, reduction_prev=False)
    assert all(isinstance(op, Identity) for op in cell.ops)
    s = torch.randn(8, 4, 6, 6)
    assert torch.equal(cell(s, s, 0.9), cell(s, s, 0.0))

    convs = tuple(("sep_conv_3x3", i) for i in (0, 1, 0, 1, 0, 1, 0, 1))
    cell = Cell(convs, (2, 3, 4, 5), 4, 4, 4, reduction=False, reduction_prev=False)
    out = cell(s, s, 0.5).flatten(1)
    ref = cell(s, s, 0.0).flatten(1)
    # With p=0.5 some node outputs are exactly zero for some samples but not for all.
    zero_nodes = (out.view(8, 4, -1) == 0).all(-1)  # (sample, node)
    assert zero_nodes.any() and not zero_nodes.all()
    assert not torch.equal(out, ref)


def test_two_genotype_form_builds_the_intended_cells():
    normal_g, reduce_g = load_genotype("EVAL_BEST_SUPERNET"), load_genotype("DARTS_V2")
    net = NetworkCIFAR(8, 10, 5, False, combine(normal_g, reduce_g))
    for cell in net.cells:
        source = reduce_g.reduce if cell.reduction else normal_g.normal
        assert cell.op_names == tuple(op for op, _ in source)
        assert cell.indices == tuple(i for _, i in source)
    assert sum(c.reduction for c in net.cells) == 2
    assert net(torch.randn(2, 3, 32, 32))[0].shape == (2, 10)


def test_unbuildable_operation_is_named():
    cell = list(DARTS_V2.normal)
    cell[3] = ("conv_9x9", 1)
    bad = Genotype(tuple(cell), DARTS_V2.normal_concat, DARTS_V2.reduce, DARTS_V2.reduce_concat)
    with pytest.raises(UserError, match="normal cell has operation 'conv_9x9'"):
        NetworkCIFAR(8, 10, 5, False, bad)
    bad = Genotype(DARTS_V2.normal, DARTS_V2.normal_concat, tuple(cell), DARTS_V2.reduce_concat)
    with pytest.raises(UserError, match="reduction cell has operation 'conv_9x9'"):
        NetworkImageNet(8, 10, 5, False, bad)


def test_input_outside_the_node_range_is_refused():
    cell = list(DARTS_V2.normal)
    cell[2] = ("sep_conv_3x3", 3)  # node 1 reads nodes 0..2 only
    bad = Genotype(tuple(cell), DARTS_V2.normal_concat, DARTS_V2.reduce, DARTS_V2.reduce_concat)
    with pytest.raises(UserError, match="node 1 from input 3"):
        NetworkCIFAR(8, 10, 5, False, bad)
