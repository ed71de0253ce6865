"""NAS-Bench-301 configurations, the query script and the genotype tool's nb301 command."""

import json
import sys

import pytest

from nas.analysis.nb301 import PREFIX, genotype_to_config
from nas.core.errors import UserError
from nas.genotype import Genotype, combine, library_names, load_genotype, save_genotype
from nas.space import primitives as space
from nas.tools.genotype import main as genotype_cli
from tests.helpers import assert_one_line_error, run_script

P = PREFIX


# --- NAS-Bench-301 ------------------------------------------------------------------------


def test_nb301_darts_v2_by_hand():
    # normal: (sep3,0)(sep3,1) | (sep3,0)(sep3,1) | (sep3,1)(skip,0) | (skip,0)(dil3,2)
    # reduce: (max,0)(max,1) | (skip,2)(max,1) | (max,0)(skip,2) | (skip,2)(max,1)
    assert genotype_to_config(load_genotype("DARTS_V2")) == {
        P + "edge_normal_0": "sep_conv_3x3",
        P + "edge_normal_1": "sep_conv_3x3",
        P + "edge_normal_2": "sep_conv_3x3",
        P + "edge_normal_3": "sep_conv_3x3",
        P + "inputs_node_normal_3": "0_1",
        P + "edge_normal_5": "skip_connect",
        P + "edge_normal_6": "sep_conv_3x3",
        P + "inputs_node_normal_4": "0_1",
        P + "edge_normal_9": "skip_connect",
        P + "edge_normal_11": "dil_conv_3x3",
        P + "inputs_node_normal_5": "0_2",
        P + "edge_reduce_0": "max_pool_3x3",
        P + "edge_reduce_1": "max_pool_3x3",
        P + "edge_reduce_3": "max_pool_3x3",
        P + "edge_reduce_4": "skip_connect",
        P + "inputs_node_reduce_3": "1_2",
        P + "edge_reduce_5": "max_pool_3x3",
        P + "edge_reduce_7": "skip_connect",
        P + "inputs_node_reduce_4": "0_2",
        P + "edge_reduce_10": "max_pool_3x3",
        P + "edge_reduce_11": "skip_connect",
        P + "inputs_node_reduce_5": "1_2",
    }


def test_nb301_best_evolutionary_by_hand():
    # normal: (sep3,0)(skip,1) | (sep3,0)(sep5,2) | (skip,0)(sep5,1) | (sep3,0)(sep3,1)
    # reduce: (sep3,0)(max,1)  | (sep3,0)(sep5,2) | (max,0)(sep5,1)  | (sep3,0)(sep3,1)
    expected = {}
    for cell, first, third in (("normal", "skip_connect", "skip_connect"), ("reduce", "max_pool_3x3", "max_pool_3x3")):
        expected.update(
            {
                f"{P}edge_{cell}_0": "sep_conv_3x3",
                f"{P}edge_{cell}_1": first,
                f"{P}edge_{cell}_2": "sep_conv_3x3",
                f"{P}edge_{cell}_4": "sep_conv_5x5",
                f"{P}inputs_node_{cell}_3": "0_2",
                f"{P}edge_{cell}_5": third,
                f"{P}edge_{cell}_6": "sep_conv_5x5",
                f"{P}inputs_node_{cell}_4": "0_1",
                f"{P}edge_{cell}_9": "sep_conv_3x3",
                f"{P}edge_{cell}_10": "sep_conv_3x3",
                f"{P}inputs_node_{cell}_5": "0_1",
            }
        )
    assert genotype_to_config(load_genotype("EVAL_BEST_EVOLUTIONARY")) == expected


def config_to_cells(config):
    """An independent reading of an NB301 config back into per-node (op, input) sets."""
    cells = {}
    for cell in ("normal", "reduce"):
        nodes = []
        for node in range(space.NUM_NODES):
            first = space.edge_offset(node)
            inputs = [0, 1] if node == 0 else [int(i) for i in config[f"{P}inputs_node_{cell}_{node + 2}"].split("_")]
            nodes.append({(config[f"{P}edge_{cell}_{first + i}"], i) for i in inputs})
        cells[cell] = nodes
    return cells


@pytest.mark.parametrize("name", library_names())
def test_nb301_every_library_genotype(name):
    g = load_genotype(name)
    config = genotype_to_config(g)
    edge_keys = [k for k in config if "edge_" in k]
    assert len(config) == 22 and len(edge_keys) == 16
    assert all(k.startswith(P) for k in config)
    assert set(config.values()) - {"0_1", "0_2", "0_3", "0_4", "1_2", "1_3", "1_4", "2_3", "2_4", "3_4"} <= set(
        space.PRIMITIVES
    )
    for cell in ("normal", "reduce"):
        assert f"{P}inputs_node_{cell}_2" not in config
        assert sum(k.startswith(f"{P}edge_{cell}_") for k in config) == 8
        assert all(0 <= int(k.rsplit("_", 1)[1]) < 14 for k in edge_keys)
    cells = config_to_cells(config)
    for cell in ("normal", "reduce"):
        pairs = getattr(g, cell)
        assert cells[cell] == [set(pairs[2 * n : 2 * n + 2]) for n in range(4)]


def test_nb301_refusals():
    g = load_genotype("DARTS_V2")
    same = list(g.normal)
    same[2:4] = [("sep_conv_3x3", 0), ("skip_connect", 0)]
    with pytest.raises(
        UserError, match="node 1 of the normal cell takes both inputs from node 0 .*two different inputs"
    ):
        genotype_to_config(Genotype(tuple(same), g.normal_concat, g.reduce, g.reduce_concat))
    seven = (("sep_conv_7x7", 0),) + g.reduce[1:]
    with pytest.raises(
        UserError, match="operation 'sep_conv_7x7' in the reduce cell, node 0: NAS-Bench-301 knows only max_pool_3x3"
    ):
        genotype_to_config(Genotype(g.normal, g.normal_concat, seven, g.reduce_concat))
    with pytest.raises(UserError, match=r"normal_concat=\[2, 3, 5\]: NAS-Bench-301 always concatenates"):
        genotype_to_config(Genotype(g.normal, (2, 3, 5), g.reduce, g.reduce_concat))


def test_nb301_cli(capsys):
    genotype_cli(["nb301", "DARTS_V2"])
    assert json.loads(capsys.readouterr().out) == genotype_to_config(load_genotype("DARTS_V2"))
    genotype_cli(["nb301", "EVAL_BEST_EVOLUTIONARY", "--one-cell"])
    g = load_genotype("EVAL_BEST_EVOLUTIONARY")
    assert json.loads(capsys.readouterr().out) == genotype_to_config(
        Genotype(g.normal, g.normal_concat, g.normal, g.normal_concat)
    )
    genotype_cli(["nb301", "DARTS_V2", "--reduce", "PDARTS"])
    assert json.loads(capsys.readouterr().out) == genotype_to_config(
        combine(load_genotype("DARTS_V2"), load_genotype("PDARTS"))
    )


def test_nb301_query_with_surrogate(fake_nb301):
    env, models = fake_nb301
    result = run_script(sys.executable, "scripts/nb301_query.py", "DARTS_V2", "--models-dir", models, env=env)
    assert result.returncode == 0, result.stderr
    # DARTS_V2 has 2 + 3 skip connections in its two cells.
    assert f"NAS-Bench-301 predicted CIFAR-10 accuracy: 90.00 % ({models / 'xgb_v1.0'})" in result.stdout
    result = run_script(sys.executable, "scripts/nb301_query.py", "DARTS_V2", "--models-dir", models.parent, env=env)
    assert_one_line_error(result, "holds no NAS-Bench-301 performance model")


def test_nb301_query_without_package(tmp_path):
    result = run_script(sys.executable, "scripts/nb301_query.py", "DARTS_V2", "--models-dir", tmp_path)
    assert_one_line_error(result, "install the nasbench301 package")
    g = load_genotype("DARTS_V2")
    same = Genotype(
        g.normal[:2] + (("sep_conv_3x3", 0), ("skip_connect", 0)) + g.normal[4:],
        g.normal_concat,
        g.reduce,
        g.reduce_concat,
    )
    save_genotype(tmp_path / "same.json", same)
    result = run_script(sys.executable, "scripts/nb301_query.py", tmp_path / "same.json", "--models-dir", tmp_path)
    assert_one_line_error(result, "node 1 of the normal cell takes both inputs from node 0")
