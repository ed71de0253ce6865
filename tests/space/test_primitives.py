import pytest

from nas.space import primitives as space


def test_primitives_are_the_seven_darts_ops_in_spec_order_without_duplicates():
    assert space.PRIMITIVES == ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
                                "dil_conv_3x3", "dil_conv_5x5")
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
