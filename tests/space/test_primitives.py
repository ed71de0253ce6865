import pytest

from nas.space import primitives as space


def test_primitives_are_the_seven_darts_ops_in_spec_order_without_duplicates():
    assert space.PRIMITIVES == (
        "max_pool_3x3",
        "avg_pool_3x3",
        "skip_connect",
        "sep_conv_3x3",
        "sep_conv_5x5",
        "dil_conv_3x3",
        "dil_conv_5x5",
    )
    assert len(set(space.PRIMITIVES)) == 7
    assert "none" not in space.PRIMITIVES
    assert space.primitives(extra_ops=True)[-1] == "sep_conv_7x7"


def test_edge_numbering_matches_spec():
    assert space.NUM_EDGES == 14
    assert [list(space.edges_of_node(n)) for n in range(4)] == [[0, 1], [2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12, 13]]
    assert [space.edge_source(e) for e in range(14)] == [0, 1, 0, 1, 2, 0, 1, 2, 3, 0, 1, 2, 3, 4]
    assert [space.edge_node(e) for e in range(14)] == [0, 0, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 3]
    for e in range(14):
        assert space.edge_index(space.edge_node(e), space.edge_source(e)) == e


def test_fine_edge_order_visits_every_edge_once():
    assert sorted(space.FINE_EDGE_ORDER) == list(range(14))
    assert space.FINE_EDGE_ORDER[:3] == (13, 12, 8)


@pytest.mark.parametrize("bad", [-1, 14])
def test_bad_edge_is_rejected(bad):
    with pytest.raises(ValueError, match=f"edge {bad} out of range"):
        space.edge_node(bad)


def test_bad_input_for_node_is_rejected():
    with pytest.raises(ValueError, match="input 3 out of range for node 1"):
        space.edge_index(1, 3)


def test_original_op_set_is_the_originals_nine_slots_with_a_real_duplicate():
    import random

    import torch

    from nas.genotype import genotype_from_switches
    from nas.search.network import SearchNetwork
    from nas.search.selection import coarse_select
    from nas.space.switches import random_switches, with_edge

    slots = space.primitives(op_set="original")
    assert [space.slot_op(s) for s in slots] == [
        "skip_connect",
        "max_pool_3x3",
        "avg_pool_3x3",
        "sep_conv_3x3",
        "sep_conv_5x5",
        "sep_conv_7x7",
        "dil_conv_3x3",
        "dil_conv_5x5",
        "dil_conv_5x5",
    ]
    assert len(set(slots)) == 9
    # phase-1 draws over the 9 slots: dil_conv_5x5 about twice as likely as another operation
    rng = random.Random(0)
    drawn = [space.slot_op(op) for _ in range(300) for ops in random_switches(1, rng, slots) for op in ops]
    share = drawn.count("dil_conv_5x5") / len(drawn)
    assert 0.17 < share < 0.28, share  # 2/9 = 0.22
    # the coarse selection may keep both slots on one edge; a tie goes to the earlier slot
    valuation = [[0.0] * 9 for _ in range(14)]
    valuation[0][7] = valuation[0][8] = -1.0
    kept = coarse_select(valuation, slots)
    assert kept[0] == ("dil_conv_5x5", space.DUPLICATE_SLOT) and kept[1] == ("skip_connect", "max_pool_3x3")
    # the duplicate has weights of its own; a genotype names it dil_conv_5x5
    net = SearchNetwork(4, 10, 3, with_edge(kept, 0, slots[7:], slots), primitives=slots)
    a, b = net.cells[0].edges[0].ops.values()
    assert all(x is not y for x, y in zip(a.parameters(), b.parameters()))
    assert [p.shape for p in a.parameters()] == [p.shape for p in b.parameters()]
    final = [[space.DUPLICATE_SLOT] if e in (0, 1, 2, 3, 5, 6, 9, 10) else [] for e in range(14)]
    assert {op for op, _ in genotype_from_switches(final).normal} == {"dil_conv_5x5"}
    assert net(torch.randn(2, 3, 8, 8)).shape == (2, 10)
