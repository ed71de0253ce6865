"""The DARTS search space: candidate operations and the 14-edge cell numbering.

A cell has two input nodes (0, 1) and four intermediate nodes (2..5 in DARTS
numbering, 0..3 as "intermediate index"). Intermediate node i receives one edge
from every earlier node, so 2+i edges; edges are numbered node by node, sources
in increasing order:  node0 <- 0,1 | node1 <- 2,3,4 | node2 <- 5..8 | node3 <- 9..13.
"""

from __future__ import annotations

# The DARTS / NAS-Bench-301 operation set, in this order everywhere (switches,
# valuation matrices, logs). `none` is never a candidate: it only names an empty edge.
PRIMITIVES: tuple[str, ...] = (
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
NONE = "none"
# Offered behind an option (the original had it), never by default.
EXTRA_PRIMITIVES: tuple[str, ...] = ("sep_conv_7x7",)
# The original's 9 slots in its order (--op_set original): dil_conv_5x5 twice, the second a
# real operation with weights of its own, named apart here and dil_conv_5x5 in a genotype.
DUPLICATE_SLOT = "dil_conv_5x5_2"
ORIGINAL_PRIMITIVES: tuple[str, ...] = (
    "skip_connect",
    "max_pool_3x3",
    "avg_pool_3x3",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "sep_conv_7x7",
    "dil_conv_3x3",
    "dil_conv_5x5",
    DUPLICATE_SLOT,
)
OP_SETS: tuple[str, ...] = ("darts", "original")

NUM_NODES = 4
NUM_INPUTS = 2
NUM_EDGES = sum(NUM_INPUTS + i for i in range(NUM_NODES))  # 14
CONCAT: tuple[int, ...] = tuple(range(NUM_INPUTS, NUM_INPUTS + NUM_NODES))  # (2, 3, 4, 5)

# Fine operation selection visits edges in this order (docs/method.md, "The evolutionary search").
FINE_EDGE_ORDER: tuple[int, ...] = (13, 12, 8, 11, 7, 4, 9, 10, 5, 6, 2, 3, 0, 1)


def primitives(extra_ops: bool = False, op_set: str = "darts") -> tuple[str, ...]:
    """The candidate operations (slots) of a search: the seven, plus the extras on request, or
    the original's nine (which hold sep_conv_7x7 already)."""
    if op_set == "original":
        return ORIGINAL_PRIMITIVES
    if op_set != "darts":
        raise ValueError(f"unknown op set {op_set!r}: expected one of {', '.join(OP_SETS)}")
    return PRIMITIVES + EXTRA_PRIMITIVES if extra_ops else PRIMITIVES


def slot_op(name: str) -> str:
    """The operation a slot computes (the original's duplicate slot is a dil_conv_5x5)."""
    return "dil_conv_5x5" if name == DUPLICATE_SLOT else name


def edge_offset(node: int) -> int:
    """Index of the first edge entering intermediate node `node` (0..3)."""
    _check_node(node)
    return sum(NUM_INPUTS + i for i in range(node))


def edges_of_node(node: int) -> range:
    """Edges entering intermediate node `node` (0..3), in source order."""
    start = edge_offset(node)
    return range(start, start + NUM_INPUTS + node)


def edge_node(edge: int) -> int:
    """The intermediate node (0..3) an edge enters."""
    _check_edge(edge)
    for node in range(NUM_NODES):
        if edge in edges_of_node(node):
            return node
    raise AssertionError("unreachable")


def edge_source(edge: int) -> int:
    """The node an edge leaves, in DARTS numbering (0, 1 inputs; 2..5 intermediate)."""
    return edge - edge_offset(edge_node(edge))


def edge_index(node: int, source: int) -> int:
    """The edge from `source` (DARTS numbering) into intermediate node `node`."""
    if not 0 <= source < NUM_INPUTS + node:
        raise ValueError(f"input {source} out of range for node {node}: expected 0..{NUM_INPUTS + node - 1}")
    return edge_offset(node) + source


def _check_node(node: int) -> None:
    if not 0 <= node < NUM_NODES:
        raise ValueError(f"node {node} out of range: expected 0..{NUM_NODES - 1}")


def _check_edge(edge: int) -> None:
    if not 0 <= edge < NUM_EDGES:
        raise ValueError(f"edge {edge} out of range: expected 0..{NUM_EDGES - 1}")


# Short operation names for tables and chart labels.
SHORT_NAMES = {
    "max_pool_3x3": "max3",
    "avg_pool_3x3": "avg3",
    "skip_connect": "skip",
    "sep_conv_3x3": "sep3",
    "sep_conv_5x5": "sep5",
    "dil_conv_3x3": "dil3",
    "dil_conv_5x5": "dil5",
    "sep_conv_7x7": "sep7",
    DUPLICATE_SLOT: "dil5'",  # the original's second dil_conv_5x5 slot (--op_set original)
}


def short_name(op: str) -> str:
    return SHORT_NAMES.get(op, op)


def reduction_cells(layers: int) -> tuple[int, int]:
    """The cells of a `layers`-cell network that reduce: at one and two thirds of its depth (DARTS)."""
    return (layers // 3, 2 * layers // 3)
