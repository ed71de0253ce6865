import pytest
import torch
import torch.nn as nn

from nas.evaluation.cost import count_macs, count_parameters_m
from nas.evaluation.networks import NetworkCIFAR, NetworkImageNet
from nas.genotype import load_genotype

DARTS_V2 = load_genotype("DARTS_V2")


def test_parameters_exclude_the_auxiliary_head():
    with_aux = NetworkCIFAR(8, 10, 5, True, DARTS_V2)
    without = NetworkCIFAR(8, 10, 5, False, DARTS_V2)
    assert count_parameters_m(with_aux) == count_parameters_m(without)
    aux = sum(p.numel() for p in with_aux.auxiliary_head.parameters())
    assert sum(p.numel() for p in with_aux.parameters()) / 1e6 == pytest.approx(
        count_parameters_m(with_aux) + aux / 1e6
    )


def test_parameters_of_a_wrapped_model_exclude_the_head_too():
    wrapped = nn.Sequential(NetworkCIFAR(8, 10, 5, True, DARTS_V2))  # names become 0.auxiliary_head.*
    assert count_parameters_m(wrapped) == count_parameters_m(NetworkCIFAR(8, 10, 5, False, DARTS_V2))


def test_parameters_in_millions():
    assert count_parameters_m(nn.Linear(1000, 1000)) == pytest.approx(1.001)


def test_macs_of_a_linear_layer():
    assert count_macs(nn.Linear(100, 30), input_size=(4, 100)) == pytest.approx(4 * 100 * 30 / 1e6)


def test_darts_v2_cifar_macs():
    # Convolutions and linear layers of DARTS_V2, C=36, 20 cells, one 32x32 image (0.53 G).
    net = NetworkCIFAR(36, 10, 20, True, DARTS_V2)
    net.train()
    assert count_macs(net) == pytest.approx(528.35904, abs=1e-6)
    assert net.training  # mode restored


def test_darts_v2_imagenet_macs_mobile_setting():
    net = NetworkImageNet(48, 1000, 14, False, DARTS_V2)
    macs = count_macs(net, input_size=(1, 3, 224, 224))
    assert macs == pytest.approx(529.911552, abs=1e-6)
    assert macs < 600  # the mobile setting


def test_macs_do_not_track_gradients_or_change_weights():
    net = NetworkCIFAR(8, 10, 5, True, DARTS_V2)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    count_macs(net)
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # eval mode: BN statistics untouched
    assert all(p.grad is None for p in net.parameters())
