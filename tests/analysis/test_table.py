"""Reading run directories and the table of runs (scripts/collect_runs.py)."""

import csv
import io
import json
import sys

import pytest

from nas.core.errors import UserError
from nas.genotype import Genotype, genotype_to_dict, load_genotype, save_genotype
from tests.helpers import assert_one_line_error, run_script

# --- run collection -----------------------------------------------------------------------

ONE_CELL = lambda cell: Genotype(cell, (2, 3, 4, 5), cell, (2, 3, 4, 5))  # noqa: E731


def fabricate_run(root, seed, status, genotype=None, val_acc=None, summary_text=None):
    run = root / f"seed{seed}" / f"search-evo-20240101-00000{seed}"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(f"seed: {seed}\nmethod: evolutionary\nnpop: 4\n")
    (run / "state.json").write_text(
        json.dumps({"status": status, "phase": "done" if status == "finished" else "coarse"})
    )
    if genotype is not None:
        save_genotype(run / "genotype.json", genotype)
        summary = {
            "method": "evolutionary",
            "seed": seed,
            "wall_time_s": 5400.0 + seed,
            "gpu_hours": 6.0,
            "world_size": 4,
            "genotype": genotype_to_dict(genotype),
            "peak_memory_mb": [1000.0],
            "steps": {},
            "status": "finished",
            "val_acc": val_acc,
        }
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


def fabricate_eval(root, name, *, finished):
    """An evaluation run as train_eval_cifar.py writes it: config, genotype, state (and summary)."""
    run = root / "evals" / name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(
        "eval_task: cifar\narch: DARTS_V2\nreduce_arch: null\nseed: 7\nepochs: 600\ndataset: cifar10\n"
    )
    save_genotype(run / "genotype.json", load_genotype("DARTS_V2"))
    figures = {
        "dataset": "cifar10",
        "params_m": 0.06733,
        "macs_m": 11.27,
        "best_top1": 97.1,
        "best_epoch": 590,
        "final_top1": 97.0,
        "final_top5": 99.9,
    }
    state = {
        "status": "finished" if finished else "running",
        "eval_task": "cifar",
        "epoch": 600 if finished else 12,
        "epochs": 600,
        "elapsed_s": 3600.0,
        **figures,
    }
    (run / "state.json").write_text(json.dumps(state))
    if finished:
        summary = {
            "status": "finished",
            "eval_task": "cifar",
            "arch": "DARTS_V2",
            "epochs": 600,
            "wall_time_s": 7200.0,
            "gpu_hours": 2.0,
            "seed": 7,
            **figures,
        }
        (run / "summary.json").write_text(json.dumps(summary))
    return run


def test_collect_table_csv_and_top_pair(runs, tmp_path):
    root, evo, sup = runs
    fabricate_eval(root, "eval-done-20240101-000000", finished=True)
    fabricate_eval(root, "eval-going-20240101-000000", finished=False)
    result = run_script(
        sys.executable,
        "scripts/collect_runs.py",
        root,
        "--csv",
        tmp_path / "runs.csv",
        "--top",
        "2",
        "--out",
        tmp_path / "pair.json",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "searches (6)" and "evaluations (2)" in lines
    assert lines[2].startswith(
        "| run | seed | method | val_acc (%) | genotype (normal cell) | params (M), CIFAR-10 eval net |"
    )
    rows = {line.split(" | ")[0][2:]: line for line in lines if line.startswith("| seed")}
    assert len(rows) == 6
    assert (
        "| 1 | evolutionary | 90.50 | sep3:0 skip:1 \\| sep3:0 sep5:2 \\| skip:0 sep5:1 \\| sep3:0 sep3:1 "
        "| 4.03 | 1:30:01 | 6.00 | finished | - |" in rows["seed1/search-evo-20240101-000001"]
    )
    # evaluations apart, with the network they trained (not the published size) and their accuracy
    evals = {line.split(" | ")[0][2:]: line for line in lines if line.startswith("| evals/")}
    assert (
        "| 7 | DARTS_V2 | cifar10 | 97.10 | 590 | 97.00 | 99.90 | 600/600 | 0.067 | 11.27 | 2:00:00 | 2.00 | finished |"
        in evals["evals/eval-done-20240101-000000"]
    )
    assert "| 12/600 |" in evals["evals/eval-going-20240101-000000"]
    assert "| unfinished (epoch 12/600) |" in evals["evals/eval-going-20240101-000000"]
    eval_csv = list(csv.DictReader(io.StringIO((tmp_path / "runs_evaluations.csv").read_text())))
    assert [r["run"] for r in eval_csv] == ["evals/eval-done-20240101-000000", "evals/eval-going-20240101-000000"]
    assert eval_csv[0]["best_top1"] == "97.1" and eval_csv[0]["params_m"] == "0.06733"
    assert "| unfinished (phase coarse) |" in rows["seed4/search-evo-20240101-000004"]
    assert (
        "| broken (state.json says finished but genotype.json is missing) |" in rows["seed5/search-evo-20240101-000005"]
    )
    assert "| broken (summary.json unreadable, no summary.json) |" in rows["seed6/search-evo-20240101-000006"]
    assert "top 2 finished runs by val_acc of summary.json" in result.stdout

    table = list(csv.DictReader(io.StringIO((tmp_path / "runs.csv").read_text())))
    assert [r["seed"] for r in table] == ["1", "2", "3", "4", "5", "6"] and table[0]["val_acc"] == "90.5"
    assert float(table[0]["params_m"]) == pytest.approx(4.03, abs=0.01) and table[0]["wall_time"] == "5401.0"
    assert table[3]["status"] == "unfinished (phase coarse)" and table[3]["genotype"] == ""

    # Normal cell of the best run (seed 1), reduction cell of the second best (seed 2): the
    # published EVAL_BEST_EVOLUTIONARY pairing, loadable by the evaluation networks.
    pair = load_genotype(tmp_path / "pair.json")
    assert pair == load_genotype("EVAL_BEST_EVOLUTIONARY")
    source = json.loads((tmp_path / "pair.json").read_text())["source"]
    assert (
        source["normal"] == "seed1/search-evo-20240101-000001"
        and source["reduce"] == "seed2/search-evo-20240101-000002"
    )
    from nas.evaluation.networks import NetworkCIFAR
    from nas.evaluation.run import resolve_genotype

    assert resolve_genotype(str(tmp_path / "pair.json")) == pair  # train_eval_*.py --arch pair.json
    NetworkCIFAR(8, 10, 5, True, pair)


def test_collect_ranks_by_nb301(runs, tmp_path, fake_nb301):
    root, evo, sup = runs
    env, models = fake_nb301
    result = run_script(
        sys.executable,
        "scripts/collect_runs.py",
        root,
        "--nb301-models",
        models,
        "--top",
        "3",
        "--out",
        tmp_path / "pair.json",
        env=env,
    )
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
    assert_one_line_error(run_script(sys.executable, script, tmp_path / "empty"), "no run directories")
    assert_one_line_error(run_script(sys.executable, script, root, "--top", "2"), "expected K >= 2 together with --out")
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert_one_line_error(
        run_script(sys.executable, script, root, "--top", "2", "--out", blocker / "pair.json"),
        f"cannot write {blocker}/pair.json",
    )
    assert_one_line_error(
        run_script(sys.executable, script, root, "--csv", blocker / "t.csv"), f"cannot write {blocker}/t.csv"
    )
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
