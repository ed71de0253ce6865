import random

import pytest
import torch

from nas.search.network import SearchNetwork, inherit_weights
from nas.space.primitives import PRIMITIVES, edges_of_node
from nas.space.switches import full_switches, make_switches, random_switches, with_edge


def tiny(switches, C=4, layers=3):
    torch.manual_seed(0)
    return SearchNetwork(C, 10, layers, switches)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("channels_last", [False, True])
def test_forward_backward_for_random_switches_with_empty_edges(seed, channels_last):
    rng = random.Random(seed)
    edges = [rng.sample(PRIMITIVES, rng.randint(0, 3)) for _ in range(14)]
    edges[0] = edges[1] = []  # node 0 has no input at all
    net = tiny(make_switches(edges))
    x = torch.randn(2, 3, 16, 16)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)
    out = net(x)
    assert out.shape == (2, 10)
    out.sum().backward()


def test_every_edge_empty_still_runs():
    net = tiny(make_switches([[]] * 14))
    assert net(torch.randn(2, 3, 8, 8)).shape == (2, 10)


def test_reduction_cells_use_the_same_edge_ops_with_stride_two_on_input_edges():
    sw = random_switches(1, random.Random(0))
    net = SearchNetwork(4, 10, 5, sw)
    reductions = [i for i, c in enumerate(net.cells) if c.reduction]
    assert reductions == [1, 3]
    for cell in net.cells:
        assert [tuple(edge.ops) for edge in cell.edges] == [tuple(o) for o in sw]


def _count_calls(net, edge, op):
    calls = []
    for cell in net.cells:
        cell.edges[edge].ops[op].register_forward_hook(lambda *a: calls.append(1))
    return calls


def test_switched_off_operation_is_not_executed_and_switching_back_restores_output():
    net = tiny(full_switches()).eval()
    x = torch.randn(2, 3, 16, 16)
    calls = _count_calls(net, 5, "sep_conv_5x5")
    before = net(x)
    assert len(calls) == 3  # once per cell
    with net.switched_off(5, "sep_conv_5x5"):
        perturbed = net(x)
    assert len(calls) == 3  # not run while off
    assert not torch.allclose(perturbed, before)
    assert torch.equal(net(x), before)
    assert len(calls) == 6


def test_switched_off_output_equals_network_built_without_the_op():
    sw = full_switches()
    net = tiny(sw).eval()
    smaller = tiny(with_edge(sw, 7, [op for op in PRIMITIVES if op != "dil_conv_3x3"])).eval()
    inherit_weights(smaller, net)
    x = torch.randn(2, 3, 16, 16)
    with net.switched_off(7, "dil_conv_3x3"):
        assert torch.allclose(net(x), smaller(x), atol=1e-6)


def test_whole_edge_off_skips_every_op_of_the_edge():
    net = tiny(full_switches()).eval()
    calls = [_count_calls(net, 9, op) for op in PRIMITIVES]
    with net.switched_off(9):
        net(torch.randn(1, 3, 8, 8))
    assert all(len(c) == 0 for c in calls)


def test_switching_off_an_absent_op_is_an_error():
    net = tiny(make_switches([["skip_connect"]] * 14))
    with pytest.raises(ValueError, match="not on edge 2"):
        with net.switched_off(2, "sep_conv_3x3"):
            pass


def test_inherit_weights_keeps_surviving_operations():
    sw = full_switches()
    old = tiny(sw)
    new = SearchNetwork(4, 10, 3, with_edge(sw, 0, ["sep_conv_3x3"]))
    copied = inherit_weights(new, old)
    assert copied > 0
    key = "cells.0.edges.0.ops.sep_conv_3x3.0.1.weight"
    assert torch.equal(new.state_dict()[key], old.state_dict()[key])


def test_node_with_no_edges_outputs_zeros():
    edges = [["skip_connect"]] * 14
    for e in edges_of_node(2):
        edges[e] = []
    net = tiny(make_switches(edges), layers=1).eval()
    cell = net.cells[0]
    s = net.stem(torch.randn(1, 3, 8, 8))
    out = cell(s, s)
    C = cell.C
    assert torch.count_nonzero(out[:, 2 * C : 3 * C]) == 0


def test_the_stem_brings_larger_images_to_about_32_px_and_leaves_32_px_networks_as_they_were():
    from nas.search.network import stem_reductions
    from nas.space.switches import full_switches

    torch.manual_seed(0)
    default = SearchNetwork(4, 10, 3, full_switches())
    torch.manual_seed(0)
    at32 = SearchNetwork(4, 10, 3, full_switches(), image_size=32)
    assert default.state_dict().keys() == at32.state_dict().keys()
    assert all(torch.equal(v, at32.state_dict()[k]) for k, v in default.state_dict().items())
    assert [stem_reductions(s) for s in (32, 64, 96, 128, 224)] == [0, 1, 1, 2, 3]
    for size in (64, 128):
        net = SearchNetwork(4, 10, 3, full_switches(), image_size=size)
        assert net.stem(torch.randn(1, 3, size, size)).shape[-1] == 32
        assert net(torch.randn(2, 3, size, size)).shape == (2, 10)
