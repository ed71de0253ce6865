"""End-to-end searches on the embedded data set (tiny preset, CPU)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT, only_run_dir, run_search, tiny_args

pytestmark = pytest.mark.slow
PY = sys.executable


def kill_after_decisions(script, args, save: Path, decisions: int) -> Path:
    """Start a search, SIGKILL it once `decisions` decisions are checkpointed; its run directory."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [PY, str(ROOT / script), *map(str, args)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.time() + 400
        while time.time() < deadline:
            found = list(save.glob("*/decisions.json"))
            if found and len(json.loads(found[0].read_text())) >= decisions:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"{script} did not reach decision {decisions} in time")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    run_dir = only_run_dir(save)
    assert not (run_dir / "genotype.json").exists()
    return run_dir


def torchrun_search(script, args, save: Path) -> tuple[Path, list]:
    """Run a search with 2 processes on the CPU (gloo); its run directory and each rank's logged genotypes."""
    cmd = [PY, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(ROOT / script), *map(str, args)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = only_run_dir(save)
    logs = [(run_dir / f"log_rank{r}.txt").read_text() for r in range(2)]
    return run_dir, [
        [line.split("genotype = ", 1)[1] for line in log.splitlines() if "genotype = " in line] for log in logs
    ]


def test_evolutionary_search_writes_a_complete_run_directory(finished_search):
    run_dir, stdout = finished_search
    genotype = json.loads((run_dir / "genotype.json").read_text())
    assert genotype["normal"] == genotype["reduce"] and len(genotype["normal"]) == 8
    assert genotype["normal_concat"] == [2, 3, 4, 5]
    assert "genotype = Genotype(normal=[" in stdout
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["method"] == "evolutionary"
    assert summary["data_label"] == "digits"  # the data set the run read, for the report and the run table
    assert summary["genotype"] == genotype
    assert summary["world_size"] == 1 and len(summary["peak_memory_mb"]) == 1
    assert summary["steps"]["phase1"][0] > 0 and summary["steps"]["phases2_4"][0] > 0
    for m in range(2):
        model = json.loads((run_dir / "valuation" / f"model{m}.json").read_text())
        assert len(model["matrix"]) == 14 and all(len(row) == 7 for row in model["matrix"])
    decisions = json.loads((run_dir / "decisions.json").read_text())
    assert [d["name"] for d in decisions][:3] == ["coarse", "fine_edge13", "fine_edge12"]
    assert len(decisions) == 1 + 14 + 3
    # one numbering, counted from 1, in decisions.json and the log; the genotype logged once;
    # --no-progress: no per-step lines; the data set named as it is
    assert [(d["decision"], d["decisions"]) for d in decisions] == [(n, 18) for n in range(1, 19)]
    selected = decisions[1]["selected"]
    assert f"decision 2/18 (fine_edge13): edge 13 keeps {selected}, done in " in stdout
    assert stdout.count("genotype = ") == 1 and " step " not in stdout
    assert "evolutionary search on digits in " in stdout
    assert (run_dir / "config.yaml").is_file() and (run_dir / "log_rank0.txt").is_file()
    assert any((run_dir / "tb").rglob("events.out.tfevents.*"))
    assert "genotype = Genotype(" in (run_dir / "log_rank0.txt").read_text()
    # tensors and plain data only: a resume loads it with weights_only (a planted file runs no code)
    from nas.search.checkpoints import CHECKPOINT_KEYS, load_checkpoint

    assert set(CHECKPOINT_KEYS) <= set(load_checkpoint(run_dir, "cpu"))


def test_resume_refuses_a_different_configuration_and_leaves_the_run_untouched(finished_search, tmp_path):
    run_dir, _ = finished_search
    before = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file()}
    proc = run_search("search_evolutionary.py", "--resume", run_dir, check=False)
    assert proc.returncode == 2 and "already finished" in proc.stderr
    assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file()} == before


def test_torchrun_two_ranks_agree_and_share_the_work(digits_root, tmp_path):
    save = tmp_path / "ddp"
    run_dir, genotypes = torchrun_search("search_evolutionary.py", tiny_args(digits_root, save, "--seed", "4"), save)
    assert genotypes[0] and genotypes[0] == genotypes[1]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["world_size"] == 2
    p1, p24 = summary["steps"]["phase1"], summary["steps"]["phases2_4"]
    assert p1[0] == p1[1] > 0  # one population model each
    assert min(p24) > 0 and max(p24) / sum(p24) <= 0.6  # phases 2-4 shared, nobody idles


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--npop", "0"], "--npop 0: expected 1 or more"),
        (["--train_path", "/nonexistent/data"], "/nonexistent/data"),
        (["--learning_rate", "1e12", "--no-fast", "--train_subset", "64"], "model0 edge0 ep1/1: training loss became"),
        # finite but far above an untrained network's loss: its scores would rank noise
        (
            ["--learning_rate", "1e6", "--no-fast", "--train_subset", "64"],
            "the search diverged: stage model0 edge0 ended with training loss",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(digits_root, tmp_path, extra, message):
    save = tmp_path / "runs"
    proc = run_search("search_evolutionary.py", *tiny_args(digits_root, save, *extra), check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    err = proc.stderr.strip().splitlines()
    assert err[-1].startswith("error: ") and message in err[-1]
    if "--learning_rate" in extra:  # diverged in the first stage, after its run directory was made
        assert "at lr 12500" in err[-1] if "1e6" in extra else "(lr 1.25e+10)" in err[-1]
    else:  # refused before anything was written
        assert not save.exists() or not any(save.iterdir())


def test_resume_of_a_directory_that_is_not_a_run(tmp_path):
    proc = run_search("search_evolutionary.py", "--resume", tmp_path, check=False)
    assert proc.returncode == 2 and "not a search run directory" in proc.stderr


def test_resume_with_a_different_search_flag_is_refused(finished_search, digits_root, tmp_path):
    run_dir, _ = finished_search
    # fabricate an unfinished copy's state to reach the configuration check
    import shutil

    copy = tmp_path / run_dir.name
    shutil.copytree(run_dir, copy)
    (copy / "state.json").write_text('{"status": "running"}')
    proc = run_search("search_evolutionary.py", "--resume", copy, "--npop", "4", check=False)
    assert proc.returncode == 2 and "--npop 4 (run has 2)" in proc.stderr


@pytest.fixture(scope="module")
def supernet_run(digits_root, tmp_path_factory):
    save = tmp_path_factory.mktemp("sup")
    run_search("search_supernet.py", *tiny_args(digits_root, save, "--seed", "5"))
    return only_run_dir(save)


def test_supernet_search_writes_the_same_outputs(supernet_run):
    genotype = json.loads((supernet_run / "genotype.json").read_text())
    assert genotype["normal"] == genotype["reduce"] and len(genotype["normal"]) == 8
    summary = json.loads((supernet_run / "summary.json").read_text())
    assert summary["method"] == "supernet" and summary["genotype"] == genotype
    decisions = json.loads((supernet_run / "decisions.json").read_text())
    assert decisions[0]["name"] == "pretrain" and len(decisions) == 18
    assert all(len(d["scores"]) == 7 for d in decisions if d["name"].startswith("fine"))  # every op a candidate
    assert not (supernet_run / "valuation").exists()


def test_supernet_resume_after_sigkill_gives_the_uninterrupted_genotype(supernet_run, digits_root, tmp_path):
    expected = json.loads((supernet_run / "genotype.json").read_text())
    save = tmp_path / "killed"
    killed_dir = kill_after_decisions("search_supernet.py", tiny_args(digits_root, save, "--seed", "5"), save, 5)
    run_search("search_supernet.py", "--resume", killed_dir, "--no-progress")
    assert json.loads((killed_dir / "genotype.json").read_text()) == expected


def test_supernet_negative_pretrain_epochs(digits_root, tmp_path):
    proc = run_search("search_supernet.py", *tiny_args(digits_root, tmp_path, "--pretrain_epochs", "-1"), check=False)
    assert proc.returncode == 2 and "--pretrain_epochs -1: expected 0 or more" in proc.stderr


def test_the_run_log_states_the_scaled_lr_and_every_candidates_finetuning_lr(finished_search):
    log = (finished_search[0] / "log_rank0.txt").read_text()
    assert "lr 0.03125 for batch 8" in log  # tiny preset: learning_rate 1.0, scaled to batch 8
    finetune = [line for line in log.splitlines() if "perturb edge" in line]
    assert finetune and all("fine-tune 1 steps at lr " in line for line in finetune)
    # topology candidates fine-tune at lr/2.5 of a fresh optimizer, not at the stage's floor
    assert any("(whole edge): fine-tune 1 steps at lr 0.0125," in line for line in finetune)


def paper_search(digits_root, save: Path, procs: int) -> Path:
    args = tiny_args(digits_root, save, "--config", ROOT / "nas" / "configs" / "paper.yaml", "--seed", "2")
    if procs == 1:
        proc = run_search("search_evolutionary.py", *args)
        assert "genotype = Genotype(" in proc.stdout
        return only_run_dir(save)
    run_dir, genotypes = torchrun_search("search_evolutionary.py", args, save)
    assert genotypes[0] and genotypes[0] == genotypes[1]
    return run_dir


def test_the_paper_protocol_runs_end_to_end_with_one_and_two_processes_alike(digits_root, tmp_path):
    """The original's slots and 14-edge topology chain show in the run directory; two processes
    (each computing phases 2-4 whole) decide exactly as one process with the whole batch."""
    runs = [paper_search(digits_root, tmp_path / f"paper{procs}", procs) for procs in (1, 2)]
    run_dir = runs[0]
    config = (run_dir / "config.yaml").read_text()
    for line in (
        "val_protocol: test",
        "perturb_restore: accumulate",
        "perturb_batches: fresh",
        "amp: auto",
        "op_set: original",
        "topology_candidates: all",
        "off_ops: zero",
        "decision_parallel: replicate",
        "population_seed: shared",
    ):
        assert line in config
    assert json.loads((run_dir / "summary.json").read_text())["val_protocol"] == "test"
    average = json.loads((run_dir / "valuation" / "average.json").read_text())
    assert average["primitives"][-2:] == ["dil_conv_5x5", "dil_conv_5x5_2"]
    assert len(average["matrix"]) == 14 and all(len(row) == 9 for row in average["matrix"])
    decisions = json.loads((run_dir / "decisions.json").read_text())
    topology = [d for d in decisions if d["name"].startswith("topology")]
    assert len(topology) == 3 and all(list(d["scores"]) == [str(e) for e in range(14)] for d in topology)
    genotype = json.loads((run_dir / "genotype.json").read_text())
    assert all(op in average["primitives"][:8] for op, _ in genotype["normal"])  # the duplicate named dil_conv_5x5
    from nas.report.load import read_run_data

    assert len(read_run_data(run_dir).primitives) == 9  # the report's heatmaps: 9 columns
    two = json.loads((runs[1] / "decisions.json").read_text())
    assert [{k: v for k, v in d.items() if k != "seconds"} for d in two] == [
        {k: v for k, v in d.items() if k != "seconds"} for d in decisions
    ]
    assert (runs[1] / "genotype.json").read_text() == (run_dir / "genotype.json").read_text()


def test_phase1_procs_value_the_population_in_helper_processes_with_the_same_scores(
    finished_search, digits_root, tmp_path
):
    """The shared search's command again on the default loader (FFCV), phase 1 in two processes:
    every score, decision and the genotype are the same (one seed, one result)."""
    run_dir, _ = finished_search
    save = tmp_path / "procs"
    run_search(
        "search_evolutionary.py",
        *tiny_args(digits_root, save, "--seed", "3", "--loader", "ffcv", "--phase1_procs", "2"),
    )
    procs_dir = only_run_dir(save)
    for m in range(2):  # model 1 was valued by the helper process
        one, two = (json.loads((d / "valuation" / f"model{m}.json").read_text()) for d in (run_dir, procs_dir))
        assert two["matrix"] == one["matrix"] and two["steps"] == one["steps"]
    timeless = [
        [{k: v for k, v in d.items() if k != "seconds"} for d in json.loads((r / "decisions.json").read_text())]
        for r in (run_dir, procs_dir)
    ]
    assert timeless[0] == timeless[1]
    assert (procs_dir / "genotype.json").read_text() == (run_dir / "genotype.json").read_text()
    assert "model 1 edge 13 scores" in (procs_dir / "log_rank0_proc1.txt").read_text()
    summary, expected = (json.loads((d / "summary.json").read_text()) for d in (procs_dir, run_dir))
    assert summary["steps"] == expected["steps"]  # the helper's steps counted by its rank
    # peak memory: the rank's is the largest of its processes', the helper's from its record
    (main, helper), helper_record = (
        summary["peak_memory_mb_per_process"][0],
        json.loads((procs_dir / "valuation" / "model1.json").read_text()),
    )
    assert helper == helper_record["peak_memory_mb"] > 0 and summary["peak_memory_mb"] == [max(main, helper)]
