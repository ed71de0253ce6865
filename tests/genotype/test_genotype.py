import json
import subprocess
import sys

import pytest

from nas.core.errors import UserError
from nas.genotype import (
    Genotype,
    combine,
    format_literal,
    genotype_from_dict,
    genotype_from_switches,
    genotype_to_dict,
    library_names,
    load_genotype,
    parse_literal,
    parse_literal_all,
    save_genotype,
    validate_genotype,
)
from nas.space import primitives as space
from tests.helpers import ROOT, SHARED

LIBRARY = ["DARTS_V1", "DARTS_V2", "EVAL_BEST_EVOLUTIONARY", "EVAL_BEST_SUPERNET", "PCDARTS_CIFAR", "PDARTS"]
CELL = (
    ("sep_conv_3x3", 0),
    ("skip_connect", 1),
    ("sep_conv_3x3", 0),
    ("sep_conv_5x5", 2),
    ("skip_connect", 0),
    ("sep_conv_5x5", 1),
    ("sep_conv_3x3", 0),
    ("sep_conv_3x3", 1),
)
G = Genotype(CELL, (2, 3, 4, 5), CELL, (2, 3, 4, 5))
LITERAL = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 0), ('sep_conv_5x5', 2), "
    "('skip_connect', 0), ('sep_conv_5x5', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=range(2, 6), "
    "reduce=[('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 0), ('sep_conv_5x5', 2), "
    "('skip_connect', 0), ('sep_conv_5x5', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], reduce_concat=range(2, 6))"
)


def with_cell(cell):
    return Genotype(tuple(cell), (2, 3, 4, 5), CELL, (2, 3, 4, 5))


# --- round trips --------------------------------------------------------------------------


def test_json_round_trip(tmp_path):
    assert genotype_from_dict(genotype_to_dict(G)) == G
    assert genotype_from_dict(json.loads(json.dumps(genotype_to_dict(G)))) == G
    save_genotype(tmp_path / "g.json", G)
    assert load_genotype(tmp_path / "g.json") == G
    assert json.loads((tmp_path / "g.json").read_text()) == genotype_to_dict(G)


def test_literal_round_trip():
    assert parse_literal(LITERAL) == G
    assert format_literal(G) == LITERAL
    assert parse_literal(format_literal(G)) == G


def test_literal_forms():
    assert parse_literal("X = " + LITERAL) == G
    listed = LITERAL.replace("range(2, 6)", "[2, 3, 4, 5]")
    assert parse_literal(listed) == G
    positional = (
        listed.replace("normal=", "").replace("normal_concat=", "").replace("reduce=", "").replace("reduce_concat=", "")
    )
    assert parse_literal(positional) == G
    g = parse_literal(LITERAL.replace("normal_concat=range(2, 6)", "normal_concat=[2, 3, 5]"))
    assert g.normal_concat == (2, 3, 5)
    assert format_literal(g).count("[2, 3, 5]") == 1


def test_genotype_is_immutable_and_hashable():
    g = parse_literal(LITERAL)
    assert isinstance(g.normal, tuple) and all(isinstance(p, tuple) for p in g.normal)
    assert hash(g) == hash(G)
    with pytest.raises(AttributeError):
        g.normal = ()


def test_library_matches_names():
    assert library_names() == LIBRARY


@pytest.mark.skipif(not (SHARED / "reference-genotypes.txt").exists(), reason="shared reference genotypes absent")
def test_library_equals_reference_file():
    reference = parse_literal_all((SHARED / "reference-genotypes.txt").read_text())
    assert sorted(reference) == LIBRARY
    for name, g in reference.items():
        assert load_genotype(name) == g, name
    # Spot-check the parse itself against the text (PDARTS uses range concats, odd spacing).
    pdarts = reference["PDARTS"]
    assert pdarts.normal[6] == ("sep_conv_3x3", 0) and pdarts.normal[7] == ("dil_conv_5x5", 4)
    assert pdarts.normal_concat == (2, 3, 4, 5) and pdarts.reduce[0] == ("avg_pool_3x3", 0)
    assert load_genotype(f"{SHARED / 'reference-genotypes.txt'}:DARTS_V2") == reference["DARTS_V2"]


def test_library_file_is_canonical_json():
    d = json.loads((ROOT / "nas" / "genotype" / "library" / "DARTS_V2.json").read_text())
    assert d["normal"][7] == ["dil_conv_3x3", 2]
    assert d["reduce_concat"] == [2, 3, 4, 5]


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cell, message",
    [
        (
            [("conv_9x9", 0)] + list(CELL[1:]),
            "unknown operation 'conv_9x9' in normal cell, node 0: expected one of max_pool_3x3",
        ),
        ([("none", 0)] + list(CELL[1:]), "operation 'none' in normal cell, node 0"),
        (
            list(CELL[:2]) + [("sep_conv_3x3", 3)] + list(CELL[3:]),
            "input 3 of 'sep_conv_3x3' in normal cell, node 1: expected an int in 0..2",
        ),
        (
            list(CELL[:7]) + [("sep_conv_3x3", -1)],
            "input -1 of 'sep_conv_3x3' in normal cell, node 3: expected an int in 0..4",
        ),
        (list(CELL[:7]) + [("sep_conv_3x3", True)], "input True"),
        (list(CELL[:1]) + list(CELL[2:]), "normal cell has 7 (op, input) pairs: expected 8"),  # node 0 with 1 input
        (
            list(CELL[:2]) + [("skip_connect", 0)] + list(CELL[2:]),
            "normal cell has 9 (op, input) pairs: expected 8",
        ),  # 3 inputs
    ],
)
def test_bad_cells(cell, message):
    with pytest.raises(UserError) as err:
        validate_genotype(with_cell(cell))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_extra_ops_behind_option():
    g = with_cell([("sep_conv_7x7", 0)] + list(CELL[1:]))
    assert validate_genotype(g) is g
    with pytest.raises(UserError, match="unknown operation 'sep_conv_7x7'"):
        validate_genotype(g, allow_extra_ops=False)


@pytest.mark.parametrize(
    "concat, message",
    [
        ((), "normal_concat is empty"),
        ((1, 2), "normal_concat entry 1: expected an int in 2..5"),
        ((2, 2), "expected each node once"),
    ],
)
def test_bad_concat(concat, message):
    with pytest.raises(UserError, match=message):
        validate_genotype(Genotype(CELL, concat, CELL, (2, 3, 4, 5)))


@pytest.mark.parametrize(
    "d, message",
    [
        ([1, 2], "genotype JSON is a list"),
        ({"normal": []}, "lacks key\\(s\\) normal_concat, reduce, reduce_concat"),
        ({**genotype_to_dict(G), "reduce_conat": [2]}, "unknown genotype JSON key\\(s\\) reduce_conat"),
        ({**genotype_to_dict(G), "normal": "sep_conv_3x3"}, "expected a list of \\(op, input\\) pairs"),
        ({**genotype_to_dict(G), "normal": [["sep_conv_3x3", 0, 1]] * 8}, "expected an \\(op, input\\) pair"),
    ],
)
def test_bad_json(d, message):
    with pytest.raises(UserError, match=message):
        genotype_from_dict(d)


@pytest.mark.parametrize(
    "text, message",
    [
        ("Genotype(normal=[('sep_conv_3x3', 0)", "malformed genotype literal at line 1"),
        (LITERAL.replace("normal_concat=", "normal_cat="), "unknown Genotype field 'normal_cat'"),
        (LITERAL.replace(", reduce_concat=range(2, 6)", ""), "lacks field\\(s\\) reduce_concat"),
        (LITERAL.replace("range(2, 6)", "list(range(2, 6))", 1), "expected a list of ints or range"),
        # refused from its bounds, before a tuple of 10**11 nodes is built (a MemoryError before)
        (
            LITERAL.replace("range(2, 6)", "range(2, 100000000000)", 1),
            "normal_concat='range\\(2, 100000000000\\)': expected node indices in 2..5",
        ),
        (
            LITERAL.replace("range(2, 6)", "range(-1000000000000000000000000000000, 6)", 1),
            "expected node indices in 2..5",
        ),
        (LITERAL.replace("range(2, 6)", "range(30000000)", 1), "expected node indices in 2..5"),
        (LITERAL.replace("('skip_connect', 1)", "'skip_connect'", 1), "expected an \\(op, input\\) pair"),
        (LITERAL.replace("Genotype(", "Genome(", 1), "expected a call `Genotype"),
        ("import os", "is not a genotype"),
        ("", "no genotype found"),
        ("A = " + LITERAL + "\nB = " + LITERAL, "text holds 2 genotypes \\(A, B\\): expected one"),
    ],
)
def test_bad_literal(text, message):
    with pytest.raises(UserError, match=message):
        parse_literal(text)


@pytest.mark.parametrize(
    "payload",
    [
        "__import__('os').system('touch {marker}')",
        "Genotype(normal=__import__('os').system('touch {marker}'), normal_concat=[2], reduce=[], reduce_concat=[2])",
        LITERAL.replace("('skip_connect', 1)", "('skip_connect', __import__('os').system('touch {marker}'))", 1),
        LITERAL.replace("range(2, 6)", "range(__import__('os').system('touch {marker}'), 6)", 1),
        "X = " + LITERAL + "\n__import__('os').system('touch {marker}')",
    ],
)
def test_code_is_never_run(tmp_path, payload):
    marker = tmp_path / "pwned"
    with pytest.raises(UserError):
        parse_literal(payload.format(marker=marker))
    assert not marker.exists()


# --- switches and pairing -----------------------------------------------------------------


def final_switches():
    switches = [() for _ in range(space.NUM_EDGES)]
    for node in range(space.NUM_NODES):
        for op, source in CELL[2 * node : 2 * node + 2]:
            switches[space.edge_index(node, source)] = (op,)
    return switches


def test_genotype_from_switches():
    assert genotype_from_switches(final_switches()) == G


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda s: s.__setitem__(13, ("skip_connect",)), "node 3 has 3 edges with an operation"),
        (lambda s: s.__setitem__(0, ()), "node 0 has 1 edges with an operation"),
        (lambda s: s.__setitem__(0, ("sep_conv_3x3", "skip_connect")), "edge 0 holds 2 operations"),
        (lambda s: s.__setitem__(0, ("nope",)), "unknown operation 'nope'"),
        (lambda s: s.pop(), "switches have 13 edges: expected 14"),
    ],
)
def test_switches_not_final(edit, message):
    switches = final_switches()
    edit(switches)
    with pytest.raises(UserError, match=message):
        genotype_from_switches(switches)


def test_combine():
    darts, pc = load_genotype("DARTS_V2"), load_genotype("PCDARTS_CIFAR")
    pair = combine(darts, pc)
    assert pair.normal == darts.normal and pair.reduce == pc.reduce
    assert pair.reduce_concat == pc.reduce_concat


# --- loading specs ------------------------------------------------------------------------


def test_load_unknown_name_lists_library():
    with pytest.raises(UserError) as err:
        load_genotype("DARTS_V3")
    message = str(err.value)
    assert "unknown genotype 'DARTS_V3'" in message
    assert all(name in message for name in LIBRARY)


def test_load_missing_and_malformed_files(tmp_path):
    with pytest.raises(UserError, match=f"{tmp_path}/absent.json does not exist"):
        load_genotype(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"normal": [')
    with pytest.raises(UserError, match=f"{bad}: malformed JSON at line 1"):
        load_genotype(bad)
    wrong = tmp_path / "g.yaml"
    wrong.write_text("x")
    with pytest.raises(UserError, match="expected .json, .txt or .py"):
        load_genotype(wrong)
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(UserError, match=f"cannot read genotype file {binary}"):
        load_genotype(binary)


def test_load_literal_file(tmp_path):
    one = tmp_path / "g.txt"
    one.write_text("# my cell\nBEST = " + LITERAL + "\n")
    assert load_genotype(one) == G
    two = tmp_path / "two.py"
    two.write_text("A = " + LITERAL + "\nB = " + LITERAL + "\n")
    assert load_genotype(f"{two}:B") == G
    with pytest.raises(UserError, match="pick one as .*:NAME, NAME one of A, B"):
        load_genotype(two)
    with pytest.raises(UserError, match="no genotype 'C': expected one of A, B"):
        load_genotype(f"{two}:C")


def make_run(root, name, state=None, genotype=None):
    run = root / name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("seed: 1\nmethod: evolutionary\n")
    if state is not None:
        (run / "state.json").write_text(json.dumps(state))
    if genotype is not None:
        save_genotype(run / "genotype.json", genotype)
    return run


def test_load_run_directory(tmp_path):
    run = make_run(tmp_path / "seed1", "search-x-20240101-000000", {"status": "finished", "phase": "done"}, G)
    assert load_genotype(run) == G
    assert load_genotype(tmp_path / "seed1") == G  # a --save directory holding one run


def test_load_unfinished_run(tmp_path):
    run = make_run(tmp_path, "search-x-1", {"status": "running", "phase": "coarse"})
    with pytest.raises(
        UserError, match=f"run directory {run} has no genotype.json: the search is unfinished .*phase coarse"
    ):
        load_genotype(run)
    broken = make_run(tmp_path, "search-x-2", {"status": "finished", "phase": "done"})
    with pytest.raises(UserError, match="state.json says finished: the run is broken"):
        load_genotype(broken)
    with pytest.raises(UserError, match="holds 2 search runs"):
        load_genotype(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="not a search run directory"):
        load_genotype(empty)


def test_import_script_regenerates_library(tmp_path):
    src = tmp_path / "cells.txt"
    src.write_text("# header\nBEST = " + LITERAL + "\n")
    out = tmp_path / "lib"
    run = subprocess.run(
        [sys.executable, ROOT / "scripts" / "import_genotypes.py", src, "--out", out], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert load_genotype(out / "BEST.json") == G
    src.write_text("BEST = Genotype(normal=[('bad_op', 0)])\n")
    run = subprocess.run(
        [sys.executable, ROOT / "scripts" / "import_genotypes.py", src, "--out", out], capture_output=True, text=True
    )
    assert run.returncode == 2 and run.stderr.startswith("error: ") and run.stderr.count("\n") == 1
