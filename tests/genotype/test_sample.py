"""Random cells of the DARTS space (`pertnas genotype sample`): valid, distinct, seeded, uniform."""

import json
import sys
from collections import Counter
from itertools import combinations

import pytest

from nas.genotype import load_genotype, validate_genotype
from nas.genotype.sample import sample_genotypes
from nas.space.primitives import CONCAT, NUM_INPUTS, NUM_NODES, PRIMITIVES
from nas.tools.genotype import main as genotype_cli
from tests.helpers import assert_one_line_error, run_script


def check_cell(cell):
    """A search's rules: per node two inputs from distinct earlier nodes, in increasing order,
    each with one of the seven operations."""
    assert len(cell) == 2 * NUM_NODES
    for node in range(NUM_NODES):
        (op_a, a), (op_b, b) = cell[2 * node : 2 * node + 2]
        assert 0 <= a < b < NUM_INPUTS + node
        assert op_a in PRIMITIVES and op_b in PRIMITIVES  # never 'none', never sep_conv_7x7


@pytest.mark.parametrize("one_cell", [True, False])
def test_sampled_cells_are_valid_distinct_and_seeded(one_cell):
    cells = sample_genotypes(300, 4, one_cell=one_cell)
    assert len(set(cells)) == 300
    for g in cells:
        validate_genotype(g, allow_extra_ops=False)
        check_cell(g.normal)
        check_cell(g.reduce)
        assert g.normal_concat == g.reduce_concat == CONCAT
    assert all(g.normal == g.reduce for g in cells) == one_cell
    assert sample_genotypes(300, 4, one_cell=one_cell) == cells  # one seed, one draw
    assert sample_genotypes(5, 4, one_cell=one_cell) == cells[:5]  # fewer: the first of them
    assert not set(sample_genotypes(300, 5, one_cell=one_cell)) & set(cells)  # another seed, other cells


def test_sampled_cells_are_uniform_over_operations_and_inputs():
    cells = sample_genotypes(2000, 1, one_cell=True)
    ops = Counter(op for g in cells for op, _ in g.normal)
    assert set(ops) == set(PRIMITIVES)
    assert all(abs(n / 16000 - 1 / 7) < 0.015 for n in ops.values()), ops
    for node in range(NUM_NODES):  # each pair of distinct earlier nodes equally often
        pairs = Counter((g.normal[2 * node][1], g.normal[2 * node + 1][1]) for g in cells)
        expected = list(combinations(range(NUM_INPUTS + node), 2))
        assert sorted(pairs) == expected
        assert all(abs(n / 2000 - 1 / len(expected)) < 0.04 for n in pairs.values()), (node, pairs)


def test_sample_writes_genotype_files_every_tool_reads(tmp_path, capsys):
    out = tmp_path / "cells"
    genotype_cli(["sample", "--n", "3", "--seed", "9", "--out", str(out), "--one-cell"])
    files = sorted(p.name for p in out.iterdir())
    assert files == ["random_seed9_1.json", "random_seed9_2.json", "random_seed9_3.json"]
    expected = sample_genotypes(3, 9, one_cell=True)
    for i, g in enumerate(expected, 1):
        path = out / f"random_seed9_{i}.json"
        assert load_genotype(str(path)) == g  # the spec every evaluation script and tool resolves
        assert json.loads(path.read_text())["source"] == {
            "sampled": "uniform DARTS cell",
            "seed": 9,
            "index": i,
            "one_cell": True,
        }
    assert "wrote 3 random cells" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, fragment",
    [
        ("--n 0 --seed 1 --out {out}", "--n 0: expected an integer from 1 to 10000"),
        ("--n x --seed 1 --out {out}", "--n x: expected an integer from 1 to 10000"),
        ("--n 10001 --seed 1 --out {out}", "--n 10001: expected an integer"),
        ("--seed 1 --out {out}", "--n is required"),
        ("--n 2 --seed -1 --out {out}", "--seed -1: expected an integer from 0 to 2147483647"),
        ("--n 2 --seed 2147483648 --out {out}", "--seed 2147483648"),
        ("--n 2 --seed 1", "--out is required"),
        ("--n 2 --seed 1 --out {file}", "is a file, expected a directory"),
        ("--n 2 --seed 1 --out {taken}", "random_seed1_2.json exists already"),
    ],
)
def test_sample_refuses_bad_values_in_one_line_and_writes_nothing(tmp_path, args, fragment):
    (tmp_path / "file").write_text("")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "random_seed1_2.json").write_text("{}")
    argv = args.format(out=tmp_path / "out", file=tmp_path / "file", taken=tmp_path / "taken").split()
    result = run_script(sys.executable, "-m", "nas.genotype", "sample", *argv)
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in (tmp_path / "taken").iterdir()) == ["random_seed1_2.json"]
