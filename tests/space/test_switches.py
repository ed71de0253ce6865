import random

import pytest

from nas.core.errors import UserError
from nas.space.primitives import PRIMITIVES
from nas.space.switches import full_switches, make_switches, random_switches, with_edge


def test_random_switches_are_seeded_and_capped():
    a = random_switches(2, random.Random(3))
    b = random_switches(2, random.Random(3))
    assert a == b
    assert all(len(ops) == 2 for ops in a)
    assert random_switches(2, random.Random(4)) != a


def test_switches_are_normalised_to_primitive_order():
    sw = make_switches([["dil_conv_5x5", "max_pool_3x3"]] + [[]] * 13)
    assert sw[0] == ("max_pool_3x3", "dil_conv_5x5")


def test_with_edge_replaces_one_edge_only():
    sw = with_edge(full_switches(), 3, ["skip_connect"])
    assert sw[3] == ("skip_connect",)
    assert sw[2] == PRIMITIVES


@pytest.mark.parametrize(
    "edges, message",
    [
        ([[]] * 13, "switches have 13 edges"),
        ([["conv_9x9"]] + [[]] * 13, "edge 0 has unknown operation"),
    ],
)
def test_bad_switches(edges, message):
    with pytest.raises(UserError, match=message):
        make_switches(edges)


def test_op_cap_out_of_range():
    with pytest.raises(UserError, match="--op_cap 8 out of range"):
        random_switches(8, random.Random(0))
