"""The Genotype type: validation, JSON, the DARTS literal form, and genotypes built from switches."""

from __future__ import annotations

import json
from typing import NamedTuple, Sequence

from nas.core.errors import UserError
from nas.core.files import write_text
from nas.genotype.literal import format_genotype, parse_literals
from nas.space import primitives as space

FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")
PAIRS_PER_CELL = 2 * space.NUM_NODES


class Genotype(NamedTuple):
    normal: tuple[tuple[str, int], ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[tuple[str, int], ...]
    reduce_concat: tuple[int, ...]


def make_genotype(normal, normal_concat, reduce, reduce_concat, allow_extra_ops: bool = True) -> Genotype:
    """A validated Genotype from any sequences (lists from JSON, ranges, tuples)."""
    g = Genotype(
        _cell_tuple(normal, "normal"),
        _concat_tuple(normal_concat, "normal_concat"),
        _cell_tuple(reduce, "reduce"),
        _concat_tuple(reduce_concat, "reduce_concat"),
    )
    return validate_genotype(g, allow_extra_ops)


def _cell_tuple(cell, field: str) -> tuple:
    if isinstance(cell, (str, bytes)) or not isinstance(cell, Sequence):
        raise UserError(f"{field}={cell!r}: expected a list of (op, input) pairs")
    pairs = []
    for pair in cell:
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise UserError(f"{field} entry {pair!r}: expected an (op, input) pair")
        pairs.append(tuple(pair))
    return tuple(pairs)


def _concat_tuple(concat, field: str) -> tuple:
    if isinstance(concat, (str, bytes)) or not isinstance(concat, (Sequence, range)):
        raise UserError(f"{field}={concat!r}: expected a list of node indices such as [2, 3, 4, 5]")
    return tuple(concat)


def validate_genotype(g: Genotype, allow_extra_ops: bool = True) -> Genotype:
    """Check every field; return g unchanged or raise UserError naming the first bad value."""
    ops = space.primitives(extra_ops=allow_extra_ops)
    for field in ("normal", "reduce"):
        _validate_cell(getattr(g, field), field, ops)
    for field in ("normal_concat", "reduce_concat"):
        _validate_concat(getattr(g, field), field)
    return g


def _validate_cell(cell, field: str, ops: Sequence[str]) -> None:
    if len(cell) != PAIRS_PER_CELL:
        raise UserError(
            f"{field} cell has {len(cell)} (op, input) pairs: expected {PAIRS_PER_CELL}, "
            f"exactly two per intermediate node"
        )
    for i, (op, inp) in enumerate(cell):
        node = i // 2
        where = f"{field} cell, node {node}"
        if op == space.NONE:
            raise UserError(
                f"operation 'none' in {where}: a genotype has no empty edges; expected one of {', '.join(ops)}"
            )
        if op not in ops:
            raise UserError(f"unknown operation {op!r} in {where}: expected one of {', '.join(ops)}")
        last = space.NUM_INPUTS + node - 1
        if type(inp) is not int or not 0 <= inp <= last:
            raise UserError(f"input {inp!r} of {op!r} in {where}: expected an int in 0..{last}")


def _validate_concat(concat, field: str) -> None:
    first, last = space.CONCAT[0], space.CONCAT[-1]
    if not concat:
        raise UserError(f"{field} is empty: expected node indices in {first}..{last}, e.g. [2, 3, 4, 5]")
    for node in concat:
        if type(node) is not int or not first <= node <= last:
            raise UserError(f"{field} entry {node!r}: expected an int in {first}..{last}")
    if len(set(concat)) != len(concat):
        raise UserError(f"{field}={list(concat)}: expected each node once")


# --- JSON -------------------------------------------------------------------------------


def genotype_to_dict(g: Genotype) -> dict:
    return {
        "normal": [[op, inp] for op, inp in g.normal],
        "normal_concat": list(g.normal_concat),
        "reduce": [[op, inp] for op, inp in g.reduce],
        "reduce_concat": list(g.reduce_concat),
    }


def genotype_from_dict(d, allow_extra_ops: bool = True) -> Genotype:
    """Genotype from its JSON dict. An optional "source" key (provenance) is ignored."""
    if not isinstance(d, dict):
        raise UserError(f"genotype JSON is a {type(d).__name__}: expected an object with keys {', '.join(FIELDS)}")
    missing = [k for k in FIELDS if k not in d]
    if missing:
        raise UserError(f"genotype JSON lacks key(s) {', '.join(missing)}: expected {', '.join(FIELDS)}")
    unknown = sorted(set(d) - set(FIELDS) - {"source"})
    if unknown:
        raise UserError(
            f"unknown genotype JSON key(s) {', '.join(unknown)}: expected {', '.join(FIELDS)} (and optional source)"
        )
    return make_genotype(*(d[k] for k in FIELDS), allow_extra_ops=allow_extra_ops)


def format_json(g: Genotype, source=None) -> str:
    """Canonical JSON text: one field per line, so a cell reads as one row."""
    d = genotype_to_dict(g)
    if source is not None:
        d["source"] = source
    return "{\n" + ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in d.items()) + "\n}\n"


def save_genotype(path, g: Genotype, source=None) -> None:
    """Write g as canonical JSON, atomically; `source` records provenance (e.g. run directories)."""
    validate_genotype(g)
    write_text(path, format_json(g, source))


# --- Python-literal form ----------------------------------------------------------------


def parse_literal(text: str, allow_extra_ops: bool = True) -> Genotype:
    """The one genotype of a literal text (`Genotype(...)` or `NAME = Genotype(...)`)."""
    named = parse_literal_all(text, allow_extra_ops)
    if len(named) != 1:
        raise UserError(f"text holds {len(named)} genotypes ({', '.join(named)}): expected one")
    return next(iter(named.values()))


def parse_literal_all(text: str, allow_extra_ops: bool = True) -> dict[str, Genotype]:
    """Every `NAME = Genotype(...)` of a text, validated, in order."""
    named = {}
    for name, fields in parse_literals(text).items():
        try:
            named[name] = make_genotype(*fields, allow_extra_ops=allow_extra_ops)
        except UserError as exc:
            raise UserError(f"{name or 'genotype'}: {exc}") from None
    return named


def format_literal(g: Genotype) -> str:
    """The DARTS form, `Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=range(2, 6), ...)`."""
    return format_genotype(g)


# --- Building genotypes -----------------------------------------------------------------


def genotype_from_switches(switches, allow_extra_ops: bool = True) -> Genotype:
    """The genotype of final switches (one op per kept edge, two kept edges per node).

    The searched cell serves as both normal and reduction cell (docs/method.md, "The evolutionary search").
    """
    if len(switches) != space.NUM_EDGES:
        raise UserError(f"switches have {len(switches)} edges: expected {space.NUM_EDGES}")
    cell = []
    for node in range(space.NUM_NODES):
        kept = [e for e in space.edges_of_node(node) if len(switches[e]) > 0]
        if len(kept) != 2:
            raise UserError(
                f"node {node} has {len(kept)} edges with an operation (edges {kept}): "
                f"expected exactly 2 in final switches"
            )
        for e in kept:
            if len(switches[e]) != 1:
                raise UserError(
                    f"edge {e} holds {len(switches[e])} operations {tuple(switches[e])}: expected 1 in final switches"
                )
            cell.append((space.slot_op(switches[e][0]), space.edge_source(e)))
    return make_genotype(cell, space.CONCAT, cell, space.CONCAT, allow_extra_ops=allow_extra_ops)


def distinct_cells(g: Genotype) -> list[tuple[str, tuple, tuple]]:
    """(kind, cell, concat) of each distinct cell: one "cell" when the normal and reduction cells
    are the same (a search's genotype), else "normal" and "reduce"."""
    if (g.normal, g.normal_concat) == (g.reduce, g.reduce_concat):
        return [("cell", g.normal, g.normal_concat)]
    return [("normal", g.normal, g.normal_concat), ("reduce", g.reduce, g.reduce_concat)]


def combine(normal_g: Genotype, reduce_g: Genotype) -> Genotype:
    """Normal cell of the first, reduction cell of the second (the paper's top-2 pairing)."""
    return Genotype(normal_g.normal, normal_g.normal_concat, reduce_g.reduce, reduce_g.reduce_concat)
