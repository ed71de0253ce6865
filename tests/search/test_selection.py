import numpy as np
import pytest

from nas.search.selection import coarse_select, fine_select, topology_node_order, topology_select
from nas.space.primitives import PRIMITIVES, edges_of_node
from nas.space.switches import make_switches


def test_coarse_keeps_the_two_lowest_scores_per_edge():
    rng = np.random.default_rng(0)
    valuation = rng.normal(size=(14, 7))
    sw = coarse_select(valuation, PRIMITIVES)
    for e in range(14):
        lowest = {PRIMITIVES[i] for i in np.argsort(valuation[e])[:2]}
        assert set(sw[e]) == lowest


def test_coarse_hand_made_matrix():
    valuation = np.zeros((14, 7))
    valuation[:, 3] = -5.0  # sep_conv_3x3 matters most everywhere
    valuation[:, 6] = -1.0  # then dil_conv_5x5
    valuation[0, 0] = -9.0  # except edge 0, where max_pool_3x3 matters most
    sw = coarse_select(valuation, PRIMITIVES)
    assert sw[0] == ("max_pool_3x3", "sep_conv_3x3")
    assert all(sw[e] == ("sep_conv_3x3", "dil_conv_5x5") for e in range(1, 14))


def test_coarse_refuses_incomplete_valuation():
    valuation = np.zeros((14, 7))
    valuation[4, 2] = np.nan
    with pytest.raises(ValueError, match="incomplete"):
        coarse_select(valuation, PRIMITIVES)


def test_fine_keeps_the_lowest_scored_op():
    sw = make_switches([["skip_connect", "sep_conv_5x5"]] * 14)
    out = fine_select(sw, 13, {"skip_connect": -0.5, "sep_conv_5x5": -2.0}, PRIMITIVES)
    assert out[13] == ("sep_conv_5x5",)
    assert out[12] == sw[12]


def test_fine_scores_must_cover_the_edge():
    sw = make_switches([["skip_connect", "sep_conv_5x5"]] * 14)
    with pytest.raises(ValueError):
        fine_select(sw, 0, {"skip_connect": 0.0}, PRIMITIVES)


def test_topology_keeps_two_lowest_edges_of_the_node():
    sw = make_switches([["sep_conv_3x3"]] * 14)
    out = topology_select(sw, 3, {9: 0.1, 10: -3.0, 11: 0.0, 12: -1.0, 13: 2.0}, PRIMITIVES)
    assert [e for e in edges_of_node(3) if out[e]] == [10, 12]
    assert all(out[e] == sw[e] for e in range(9))


def test_topology_node_order_is_seeded_and_never_includes_node_0():
    orders = {tuple(topology_node_order(s)) for s in range(20)}
    assert all(sorted(o) == [1, 2, 3] for o in orders)
    assert len(orders) > 1
    assert topology_node_order(5) == topology_node_order(5)


def test_topology_needs_fine_selection_first():
    from nas.search.selection import check_topology_ready

    sw = make_switches([["sep_conv_3x3"]] * 14)
    check_topology_ready(sw, 2)
    check_topology_ready(topology_select(sw, 3, {e: float(e) for e in edges_of_node(3)}, PRIMITIVES), 1)
    with pytest.raises(ValueError, match="one operation per edge"):
        check_topology_ready(make_switches([["sep_conv_3x3", "skip_connect"]] * 14), 1)
