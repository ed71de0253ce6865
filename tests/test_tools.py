"""The researcher tools: genotype CLI, NAS-Bench-301, plots, run collection, seed sweeps."""
import csv
import io
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from conftest import ROOT

from nas import space
from nas.errors import UserError
from nas.genotype import Genotype, combine, genotype_to_dict, library_names, load_genotype, save_genotype
from nas.genotype.__main__ import cells_text, main as genotype_cli
from nas.nb301 import PREFIX, genotype_to_config

P = PREFIX


def run_script(*args, env=None, cwd=ROOT):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, timeout=600)


def assert_one_line_error(result, fragment):
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert fragment in result.stderr, result.stderr


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
        expected.update({
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
        })
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
    assert set(config.values()) - {"0_1", "0_2", "0_3", "0_4", "1_2", "1_3", "1_4", "2_3", "2_4", "3_4"} <= set(space.PRIMITIVES)
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
    with pytest.raises(UserError, match="node 1 of the normal cell takes both inputs from node 0 .*two different inputs"):
        genotype_to_config(Genotype(tuple(same), g.normal_concat, g.reduce, g.reduce_concat))
    seven = (("sep_conv_7x7", 0),) + g.reduce[1:]
    with pytest.raises(UserError, match="operation 'sep_conv_7x7' in the reduce cell, node 0: NAS-Bench-301 knows only max_pool_3x3"):
        genotype_to_config(Genotype(g.normal, g.normal_concat, seven, g.reduce_concat))
    with pytest.raises(UserError, match=r"normal_concat=\[2, 3, 5\]: NAS-Bench-301 always concatenates"):
        genotype_to_config(Genotype(g.normal, (2, 3, 5), g.reduce, g.reduce_concat))


def test_nb301_cli(capsys):
    genotype_cli(["nb301", "DARTS_V2"])
    assert json.loads(capsys.readouterr().out) == genotype_to_config(load_genotype("DARTS_V2"))
    genotype_cli(["nb301", "EVAL_BEST_EVOLUTIONARY", "--one-cell"])
    g = load_genotype("EVAL_BEST_EVOLUTIONARY")
    assert json.loads(capsys.readouterr().out) == genotype_to_config(Genotype(g.normal, g.normal_concat, g.normal, g.normal_concat))
    genotype_cli(["nb301", "DARTS_V2", "--reduce", "PDARTS"])
    assert json.loads(capsys.readouterr().out) == genotype_to_config(combine(load_genotype("DARTS_V2"), load_genotype("PDARTS")))


FAKE_NB301 = '''
"""Stand-in for the nasbench301 package: the API the query uses, a made-up score."""
from pathlib import Path

PREFIX = "NetworkSelectorDatasetInfo:darts:"


class _API:
    def predict(self, config, representation, with_noise=True):
        assert representation == "configspace" and len(config) == 22
        assert all(k.startswith(PREFIX) for k in config)
        return 95.0 - sum(v == "skip_connect" for v in config.values())


def load_ensemble(directory):
    assert Path(directory).name == "xgb_v1.0", directory
    return _API()
'''


@pytest.fixture
def fake_nb301(tmp_path):
    pkg = tmp_path / "fakepkg" / "nasbench301"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(FAKE_NB301)
    models = tmp_path / "nb_models"
    (models / "xgb_v1.0").mkdir(parents=True)
    return {"PYTHONPATH": str(pkg.parent)}, models


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
    same = Genotype(g.normal[:2] + (("sep_conv_3x3", 0), ("skip_connect", 0)) + g.normal[4:], g.normal_concat, g.reduce, g.reduce_concat)
    save_genotype(tmp_path / "same.json", same)
    result = run_script(sys.executable, "scripts/nb301_query.py", tmp_path / "same.json", "--models-dir", tmp_path)
    assert_one_line_error(result, "node 1 of the normal cell takes both inputs from node 0")


# --- plots, show, convert -----------------------------------------------------------------


SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize("name", library_names())
def test_plot_every_library_genotype(tmp_path, name, capsys):
    genotype_cli(["plot", name, "--out", str(tmp_path)])
    g = load_genotype(name)
    kinds = ["cell"] if g.normal == g.reduce else ["normal", "reduce"]
    expected = sorted(f"{name}_{k}.{fmt}" for k in kinds for fmt in ("png", "svg"))
    assert sorted(p.name for p in tmp_path.iterdir()) == expected
    for kind in kinds:
        assert (tmp_path / f"{name}_{kind}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        svg = ET.fromstring((tmp_path / f"{name}_{kind}.svg").read_text())
        assert svg.tag == f"{SVG}svg"
        cell = g.normal if kind in ("cell", "normal") else g.reduce
        texts = sorted(t.text for t in svg.iter(f"{SVG}text"))
        assert texts == sorted(["c_{k-2}", "c_{k-1}", "c_{k}", "0", "1", "2", "3"] + [op for op, _ in cell])
        edges = [e for e in svg.iter(f"{SVG}g") if e.get("class") == "edge"]
        assert len(edges) == 12  # 8 labelled edges + 4 into c_{k}


def test_plot_unwritable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match=f"cannot write {blocker}/out/DARTS_V2_normal.png"):
        genotype_cli(["plot", "DARTS_V2", "--out", str(blocker / "out")])


def test_show(capsys):
    genotype_cli(["show", "DARTS_V2"])
    out = capsys.readouterr().out
    assert "node 3: skip_connect <- c_{k-2}, dil_conv_3x3 <- node 0" in out
    assert "reduction cell" in out
    # SPEC §7: DARTS_V2 is about 3.3 M on CIFAR-10 and 4.7 M on ImageNet.
    assert "CIFAR-10 network (C=36, 20 cells, 32x32): 3.35 M parameters" in out
    assert "ImageNet network (C=48, 14 cells, 224x224): 4.72 M parameters" in out
    assert cells_text(load_genotype("EVAL_BEST_SUPERNET")).splitlines() == [
        "cell (normal and reduction), output = concat of nodes 0, 1, 2, 3",
        "  node 0: skip_connect <- c_{k-2}, sep_conv_3x3 <- c_{k-1}",
        "  node 1: sep_conv_5x5 <- c_{k-2}, sep_conv_3x3 <- c_{k-1}",
        "  node 2: sep_conv_5x5 <- c_{k-2}, sep_conv_3x3 <- c_{k-1}",
        "  node 3: sep_conv_5x5 <- c_{k-2}, max_pool_3x3 <- c_{k-1}",
    ]


def test_convert(tmp_path, capsys):
    genotype_cli(["convert", "PDARTS", "--to", "literal", "--out", str(tmp_path / "p.txt")])
    assert capsys.readouterr().out == f"{tmp_path / 'p.txt'}\n"
    assert load_genotype(tmp_path / "p.txt") == load_genotype("PDARTS")
    genotype_cli(["convert", str(tmp_path / "p.txt"), "--to", "json"])
    assert json.loads(capsys.readouterr().out) == genotype_to_dict(load_genotype("PDARTS"))
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match=f"cannot write {blocker}/x.json"):
        genotype_cli(["convert", "PDARTS", "--to", "json", "--out", str(blocker / "x.json")])


def test_cli_bad_spec():
    result = run_script(sys.executable, "-m", "nas.genotype", "show", "DARTS_V3")
    assert_one_line_error(result, "unknown genotype 'DARTS_V3': expected a library name (DARTS_V1, DARTS_V2")


# --- run collection -----------------------------------------------------------------------

ONE_CELL = lambda cell: Genotype(cell, (2, 3, 4, 5), cell, (2, 3, 4, 5))  # noqa: E731


def fabricate_run(root, seed, status, genotype=None, val_acc=None, summary_text=None):
    run = root / f"seed{seed}" / f"search-evo-20240101-00000{seed}"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(f"seed: {seed}\nmethod: evolutionary\nnpop: 4\n")
    (run / "state.json").write_text(json.dumps({"status": status, "phase": "done" if status == "finished" else "coarse"}))
    if genotype is not None:
        save_genotype(run / "genotype.json", genotype)
        summary = {"method": "evolutionary", "seed": seed, "wall_time_s": 5400.0 + seed, "gpu_hours": 6.0,
                   "world_size": 4, "genotype": genotype_to_dict(genotype), "peak_memory_mb": [1000.0],
                   "steps": {}, "status": "finished", "val_acc": val_acc}
        (run / "summary.json").write_text(summary_text if summary_text is not None else json.dumps(summary))
    return run


@pytest.fixture
def runs(tmp_path):
    evo, sup = load_genotype("EVAL_BEST_EVOLUTIONARY"), load_genotype("EVAL_BEST_SUPERNET")
    root = tmp_path / "sweep"
    fabricate_run(root, 1, "finished", ONE_CELL(evo.normal), 90.5)  # 2 skips per cell
    fabricate_run(root, 2, "finished", ONE_CELL(evo.reduce), 90.1)  # no skip
    fabricate_run(root, 3, "finished", ONE_CELL(sup.normal), 89.7)  # 1 skip per cell
    fabricate_run(root, 4, "running")
    fabricate_run(root, 5, "finished")  # says finished, wrote nothing
    fabricate_run(root, 6, "finished", ONE_CELL(sup.normal), 99.0, summary_text="{truncated")
    return root, evo, sup


def test_collect_table_csv_and_top_pair(runs, tmp_path):
    root, evo, sup = runs
    result = run_script(sys.executable, "scripts/collect_runs.py", root, "--csv", tmp_path / "runs.csv",
                        "--top", "2", "--out", tmp_path / "pair.json")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("| run | seed | method | genotype (normal cell) | params (M) |")
    rows = {line.split(" | ")[0][2:]: line for line in lines if line.startswith("| seed")}
    assert len(rows) == 6
    assert "| 1 | evolutionary | sep3:0 skip:1 \\| sep3:0 sep5:2 \\| skip:0 sep5:1 \\| sep3:0 sep3:1 | 4.03 | 1:30:01 | 6.00 | finished | - |" in rows["seed1/search-evo-20240101-000001"]
    assert "| unfinished (phase coarse) |" in rows["seed4/search-evo-20240101-000004"]
    assert "| broken (state.json says finished but genotype.json is missing) |" in rows["seed5/search-evo-20240101-000005"]
    assert "| broken (summary.json unreadable, no summary.json) |" in rows["seed6/search-evo-20240101-000006"]
    assert "top 2 finished runs by val_acc of summary.json" in result.stdout

    table = list(csv.DictReader(io.StringIO((tmp_path / "runs.csv").read_text())))
    assert [r["seed"] for r in table] == ["1", "2", "3", "4", "5", "6"]
    assert float(table[0]["params_m"]) == pytest.approx(4.03, abs=0.01) and table[0]["wall_time"] == "5401.0"
    assert table[3]["status"] == "unfinished (phase coarse)" and table[3]["genotype"] == ""

    # Normal cell of the best run (seed 1), reduction cell of the second best (seed 2): the
    # published EVAL_BEST_EVOLUTIONARY pairing, loadable by the evaluation networks.
    pair = load_genotype(tmp_path / "pair.json")
    assert pair == load_genotype("EVAL_BEST_EVOLUTIONARY")
    source = json.loads((tmp_path / "pair.json").read_text())["source"]
    assert source["normal"] == "seed1/search-evo-20240101-000001" and source["reduce"] == "seed2/search-evo-20240101-000002"
    from nas.eval_model import NetworkCIFAR
    from nas.evaluation import resolve_genotype

    assert resolve_genotype(str(tmp_path / "pair.json")) == pair  # train_eval_*.py --arch pair.json
    NetworkCIFAR(8, 10, 5, True, pair)


def test_collect_ranks_by_nb301(runs, tmp_path, fake_nb301):
    root, evo, sup = runs
    env, models = fake_nb301
    result = run_script(sys.executable, "scripts/collect_runs.py", root, "--nb301-models", models,
                        "--top", "3", "--out", tmp_path / "pair.json", env=env)
    assert result.returncode == 0, result.stderr
    assert "| finished | 91.00 |" in result.stdout  # seed 1: 4 skips
    assert "top 3 finished runs by NAS-Bench-301 prediction:" in result.stdout
    assert "1. seed2/search-evo-20240101-000002  95.00" in result.stdout
    assert load_genotype(tmp_path / "pair.json") == Genotype(evo.reduce, (2, 3, 4, 5), sup.normal, (2, 3, 4, 5))


def test_collect_bad_inputs(runs, tmp_path):
    root, _, _ = runs
    script = "scripts/collect_runs.py"
    assert_one_line_error(run_script(sys.executable, script, tmp_path / "nowhere"), "is not a directory")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run_script(sys.executable, script, tmp_path / "empty"), "no search run directories")
    assert_one_line_error(run_script(sys.executable, script, root, "--top", "2"), "expected K >= 2 together with --out")
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert_one_line_error(run_script(sys.executable, script, root, "--top", "2", "--out", blocker / "pair.json"),
                          f"cannot write {blocker}/pair.json")
    assert_one_line_error(run_script(sys.executable, script, root, "--csv", blocker / "t.csv"), f"cannot write {blocker}/t.csv")
    result = run_script(sys.executable, script, root, "--top", "4", "--out", tmp_path / "p.json")
    assert_one_line_error(result, "3 finished run(s)")
    assert not (tmp_path / "p.json").exists()
    result = run_script(sys.executable, script, root, "--nb301-models", tmp_path)
    assert_one_line_error(result, "install the nasbench301 package")


def test_run_directory_spec_messages(runs):
    root, _, _ = runs
    with pytest.raises(UserError, match="the search is unfinished .*phase coarse"):
        load_genotype(root / "seed4")
    with pytest.raises(UserError, match="the run is broken"):
        load_genotype(root / "seed5" / "search-evo-20240101-000005")


# --- seed sweeps --------------------------------------------------------------------------

FAKE_SEARCH = '''
"""Stand-in for search_evolutionary.py: records its flags; fails once for seeds in FAIL_SEEDS."""
import argparse, json, os, sys
from pathlib import Path

sys.path.insert(0, {root!r})
from nas.genotype import load_genotype, save_genotype

p = argparse.ArgumentParser()
p.add_argument("--seed", type=int)
p.add_argument("--save")
p.add_argument("--resume")
args, rest = p.parse_known_args()
run = Path(args.resume) if args.resume else Path(args.save) / f"search-fake-{{args.seed}}"
run.mkdir(parents=True, exist_ok=True)
with open(run / "calls.jsonl", "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
(run / "config.yaml").write_text(f"seed: {{args.seed}}\\nmethod: evolutionary\\n")
if str(args.seed) in os.environ.get("FAIL_SEEDS", "").split() and not args.resume:
    (run / "state.json").write_text(json.dumps({{"status": "running", "phase": "valuation"}}))
    sys.exit(1)
save_genotype(run / "genotype.json", load_genotype("DARTS_V2"))
(run / "state.json").write_text(json.dumps({{"status": "finished", "phase": "done"}}))
'''


def test_sweep_skips_finished_and_resumes_unfinished(tmp_path):
    script = tmp_path / "fake_search.py"
    script.write_text(FAKE_SEARCH.format(root=str(ROOT)))
    root = tmp_path / "sweep"
    sweep = [ROOT / "scripts" / "sweep_seeds.sh", "--seeds", "1 2", "--root", root, "--script", script, "--", "--npop", "2"]
    env = {"PYTHON": sys.executable, "FAIL_SEEDS": "2"}

    first = run_script(*sweep, env=env)
    assert first.returncode == 1 and "error: seeds 2 did not finish" in first.stderr
    assert (root / "seed1" / "search-fake-1" / "genotype.json").exists()
    assert not (root / "seed2" / "search-fake-2" / "genotype.json").exists()

    second = run_script(*sweep, env=env)
    assert second.returncode == 0, second.stderr
    assert f"== seed 1: finished ({root}/seed1/search-fake-1), skipped" in second.stdout
    assert f"== seed 2: resuming {root}/seed2/search-fake-2" in second.stdout
    calls = [json.loads(line) for line in (root / "seed2" / "search-fake-2" / "calls.jsonl").read_text().splitlines()]
    assert calls == [
        ["--seed", "2", "--save", f"{root}/seed2", "--npop", "2"],
        ["--seed", "2", "--save", f"{root}/seed2", "--resume", f"{root}/seed2/search-fake-2", "--npop", "2"],
    ]
    assert len((root / "seed1" / "search-fake-1" / "calls.jsonl").read_text().splitlines()) == 1


def test_sweep_reports_a_search_that_wrote_no_genotype(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("")
    result = run_script(ROOT / "scripts" / "sweep_seeds.sh", "--seeds", "4", "--root", tmp_path / "r", "--script", script,
                        env={"PYTHON": sys.executable})
    assert result.returncode == 1
    assert f"== seed 4: the search exited without writing genotype.json under {tmp_path}/r/seed4" in result.stderr


@pytest.mark.parametrize(
    "args, fragment",
    [
        ("--root {root} --script {script}", "--seeds is required"),
        ("--seeds 1,b --root {root} --script {script}", "seed '1,b' in --seeds"),
        ("--seeds 1 --root {root} --script {script} --nproc 0", "--nproc 0"),
        ("--seeds 1 --root {root} --script /nonexistent.py", "search script /nonexistent.py does not exist"),
        ("--seeds 1 --root {root} --script {script} -- --seed 3", "the sweep sets --seed, --save and --resume itself"),
        ("--seeds 1 --root {script}/sub --script {script}", "cannot create or write --root"),
        ("--seeds 1 --bogus", "unknown option '--bogus'"),
    ],
)
def test_sweep_bad_arguments(tmp_path, args, fragment):
    script = tmp_path / "s.py"
    script.write_text("")
    args = args.format(root=tmp_path / "root", script=script).split()
    assert_one_line_error(run_script(ROOT / "scripts" / "sweep_seeds.sh", *args), fragment)
    assert not (tmp_path / "root").exists()


@pytest.mark.slow
def test_sweep_two_seeds_of_tiny_search(tmp_path, digits_root):
    root = tmp_path / "sweep"
    sweep = [ROOT / "scripts" / "sweep_seeds.sh", "--seeds", "1 2", "--root", root, "--",
             "--preset", "tiny", "--fast", "--batch_size", "8", "--train_path", digits_root, "--loader", "torch",
             "--no-progress", "--note", "tiny"]
    env = {"PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    result = run_script(*sweep, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for seed in (1, 2):
        assert len(load_genotype(root / f"seed{seed}").normal) == 8  # one finished run per seed
    again = run_script(*sweep, env=env)
    assert again.returncode == 0 and again.stdout.count("skipped") == 2, again.stdout
    table = run_script(sys.executable, "scripts/collect_runs.py", root)
    assert table.returncode == 0, table.stderr
    assert table.stdout.count("| finished |") == 2 and "| 1 | evolutionary |" in table.stdout
    pair = run_script(sys.executable, "scripts/collect_runs.py", root, "--top", "2", "--out", tmp_path / "pair.json")
    assert pair.returncode == 0, pair.stderr  # ranked by the runs' val_acc (no NAS-Bench-301 here)
    assert len(load_genotype(tmp_path / "pair.json").reduce) == 8
