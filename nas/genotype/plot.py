"""Cell diagrams in the DARTS style: inputs c_{k-2}, c_{k-1} (green), intermediate nodes 0..3
(blue), edges labelled with their operation, all intermediate nodes into c_{k} (yellow)."""

from __future__ import annotations

from pathlib import Path

from nas.core.errors import UserError
from nas.core.files import atomic_write
from nas.genotype.genotype import distinct_cells

FORMATS = ("png", "svg")


def cell_graph(cell, concat):
    import graphviz

    g = graphviz.Digraph(
        format="png",
        edge_attr=dict(fontsize="20", fontname="times"),
        node_attr=dict(
            style="filled",
            shape="rect",
            align="center",
            fontsize="20",
            height="0.5",
            width="0.5",
            penwidth="2",
            fontname="times",
        ),
        engine="dot",
    )
    g.attr(rankdir="LR")
    g.node("c_{k-2}", fillcolor="darkseagreen2")
    g.node("c_{k-1}", fillcolor="darkseagreen2")
    steps = len(cell) // 2
    for i in range(steps):
        g.node(str(i), fillcolor="lightblue")
    for i in range(steps):
        for op, j in cell[2 * i : 2 * i + 2]:
            source = "c_{k-2}" if j == 0 else "c_{k-1}" if j == 1 else str(j - 2)
            g.edge(source, str(i), label=op, fillcolor="gray")
    g.node("c_{k}", fillcolor="palegoldenrod")
    for node in concat:
        g.edge(str(node - 2), "c_{k}", fillcolor="gray")
    return g


def plot_genotype(g, out_dir, name: str) -> list[Path]:
    """Write <name>_{normal,reduce}.{png,svg} (<name>_cell.* when both cells are the same)."""
    rendered = {}
    for kind, cell, concat in distinct_cells(g):
        graph = cell_graph(cell, concat)
        for fmt in FORMATS:
            rendered[Path(out_dir) / f"{name}_{kind}.{fmt}"] = _render(graph, fmt)
    # Render everything first, so a missing `dot` leaves no partial set of files.
    for path, data in rendered.items():
        try:
            atomic_write(path, lambda f, data=data: f.write(data), mode="wb")
        except OSError as exc:
            raise UserError(f"cannot write {path}: {exc.strerror}") from None
    return list(rendered)


def _render(graph, fmt: str) -> bytes:
    import graphviz

    try:
        return graph.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise UserError(
            "graphviz's `dot` program is not installed: run `make setup` or `apt-get install graphviz`"
        ) from None
