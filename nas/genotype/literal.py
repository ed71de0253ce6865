"""The Python-literal genotype form that DARTS-like repositories print, read without eval.

    NAME = Genotype(normal=[('sep_conv_3x3', 1), ...], normal_concat=range(2, 6),
                    reduce=[...], reduce_concat=[2, 3, 4, 5])

The text is parsed into a syntax tree and only these shapes are accepted: statements
`NAME = Genotype(...)` or a bare `Genotype(...)`; the four fields by keyword or position;
cells as lists/tuples of (str, int) pairs; concats as lists/tuples of ints or
`range(a, b)`. Anything else (names, calls, attribute access) is refused, never run.
"""

from __future__ import annotations

import ast

from nas.core.errors import UserError
from nas.space.primitives import CONCAT

FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")


def parse_literals(text: str) -> dict[str, tuple]:
    """All genotypes of a literal text, as {name: (normal, normal_concat, reduce, reduce_concat)}.

    A bare `Genotype(...)` statement gets the name "". Raw tuples; the caller validates them.
    """
    try:
        tree = ast.parse(text, mode="exec")
    except SyntaxError as exc:
        raise UserError(f"malformed genotype literal at line {exc.lineno}: {exc.msg}") from None
    found: dict[str, tuple] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            name, value = stmt.targets[0].id, stmt.value
        elif isinstance(stmt, ast.Expr):
            name, value = "", stmt.value
        else:
            raise UserError(
                f"line {stmt.lineno}: {_snippet(stmt)!r} is not a genotype: "
                f"expected `NAME = Genotype(...)` or `Genotype(...)`"
            )
        if name in found:
            raise UserError(
                f"line {stmt.lineno}: genotype {name or 'Genotype(...)'!r} appears twice: expected each once"
            )
        found[name] = _genotype_call(value)
    if not found:
        raise UserError(
            "no genotype found: expected `Genotype(normal=[...], normal_concat=..., reduce=[...], reduce_concat=...)`"
        )
    return found


def _genotype_call(node: ast.expr) -> tuple:
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Genotype"):
        raise UserError(f"line {node.lineno}: {_snippet(node)!r} is not a genotype: expected a call `Genotype(...)`")
    if len(node.args) > len(FIELDS):
        raise UserError(
            f"line {node.lineno}: Genotype(...) has {len(node.args)} positional fields: "
            f"expected at most 4 ({', '.join(FIELDS)})"
        )
    fields: dict[str, ast.expr] = dict(zip(FIELDS, node.args))
    for kw in node.keywords:
        if kw.arg not in FIELDS:
            raise UserError(
                f"line {node.lineno}: unknown Genotype field {kw.arg or '**'!r}: expected {', '.join(FIELDS)}"
            )
        if kw.arg in fields:
            raise UserError(f"line {node.lineno}: Genotype field {kw.arg!r} given twice")
        fields[kw.arg] = kw.value
    missing = [f for f in FIELDS if f not in fields]
    if missing:
        raise UserError(f"line {node.lineno}: Genotype(...) lacks field(s) {', '.join(missing)}")
    return (
        _cell(fields["normal"], "normal"),
        _concat(fields["normal_concat"], "normal_concat"),
        _cell(fields["reduce"], "reduce"),
        _concat(fields["reduce_concat"], "reduce_concat"),
    )


def _cell(node: ast.expr, field: str) -> tuple:
    if not isinstance(node, (ast.List, ast.Tuple)):
        raise UserError(f"line {node.lineno}: {field}={_snippet(node)!r}: expected a list of (op, input) pairs")
    pairs = []
    for item in node.elts:
        value = _constant(item, field)
        if not (isinstance(value, (tuple, list)) and len(value) == 2):
            raise UserError(f"line {item.lineno}: {field} entry {_snippet(item)!r}: expected an (op, input) pair")
        pairs.append(tuple(value))
    return tuple(pairs)


def _concat(node: ast.expr, field: str) -> tuple:
    if isinstance(node, ast.Call):
        if not (
            isinstance(node.func, ast.Name)
            and node.func.id == "range"
            and not node.keywords
            and 1 <= len(node.args) <= 2
        ):
            raise UserError(f"line {node.lineno}: {field}={_snippet(node)!r}: expected a list of ints or range(a, b)")
        bounds = [_constant(arg, field) for arg in node.args]
        if not all(type(b) is int for b in bounds):
            raise UserError(f"line {node.lineno}: {field}={_snippet(node)!r}: range bounds must be ints")
        span = range(*bounds)
        first, last = CONCAT[0], CONCAT[-1]
        if span.start < span.stop and not (first <= span.start and span.stop - 1 <= last):  # before building it
            raise UserError(f"line {node.lineno}: {field}={_snippet(node)!r}: expected node indices in {first}..{last}")
        return tuple(span)
    if not isinstance(node, (ast.List, ast.Tuple)):
        raise UserError(f"line {node.lineno}: {field}={_snippet(node)!r}: expected a list of ints or range(a, b)")
    return tuple(_constant(item, field) for item in node.elts)


def _constant(node: ast.expr, field: str):
    # literal_eval on a sub-tree accepts only literals: names and calls raise ValueError.
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise UserError(f"line {node.lineno}: {field} entry {_snippet(node)!r}: expected a literal") from None


def _snippet(node: ast.AST, width: int = 60) -> str:
    text = ast.unparse(node)
    return text if len(text) <= width else text[: width - 3] + "..."


def format_cell(cell) -> str:
    return "[" + ", ".join(f"({op!r}, {inp})" for op, inp in cell) + "]"


def format_concat(concat) -> str:
    concat = list(concat)
    if len(concat) > 1 and concat == list(range(concat[0], concat[-1] + 1)):
        return f"range({concat[0]}, {concat[-1] + 1})"
    return repr(concat)


def format_genotype(g) -> str:
    return (
        f"Genotype(normal={format_cell(g.normal)}, normal_concat={format_concat(g.normal_concat)}, "
        f"reduce={format_cell(g.reduce)}, reduce_concat={format_concat(g.reduce_concat)})"
    )
