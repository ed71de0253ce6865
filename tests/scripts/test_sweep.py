"""Seed sweeps (scripts/sweep_seeds.sh)."""

import json
import os
import shutil
import sys

import pytest

from nas.genotype import load_genotype
from tests.helpers import ROOT, assert_one_line_error, plant_checkpoint, run_script, tiny_args

# --- seed sweeps --------------------------------------------------------------------------

FAKE_SEARCH = '''
"""Stand-in for search_evolutionary.py: records its flags; fails once for seeds in FAIL_SEEDS."""
import argparse, json, os, sys, time
from pathlib import Path

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
time.sleep(float(os.environ.get("SLEEP", "0")))
save_genotype(run / "genotype.json", load_genotype("DARTS_V2"))
(run / "state.json").write_text(json.dumps({{"status": "finished", "phase": "done"}}))
'''


def test_sweep_skips_finished_and_resumes_unfinished(tmp_path):
    script = tmp_path / "fake_search.py"
    script.write_text(FAKE_SEARCH.format(root=str(ROOT)))
    root = tmp_path / "sweep"
    sweep = [
        ROOT / "scripts" / "sweep_seeds.sh",
        "--seeds",
        "1 2",
        "--root",
        root,
        "--script",
        script,
        "--",
        "--npop",
        "2",
    ]
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


def test_two_sweeps_on_one_root_run_each_seed_once(tmp_path):
    """Started together, two sweeps over the same seeds: each seed is searched by one of them."""
    import subprocess

    script = tmp_path / "fake_search.py"
    script.write_text(FAKE_SEARCH.format(root=str(ROOT)))
    root = tmp_path / "sweep"
    sweep = [str(ROOT / "scripts" / "sweep_seeds.sh"), "--seeds", "1 2", "--root", str(root), "--script", str(script)]
    env = {**os.environ, "PYTHON": sys.executable, "SLEEP": "1.5"}
    procs = [
        subprocess.Popen(sweep, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    for s in (1, 2):
        calls = (root / f"seed{s}" / f"search-fake-{s}" / "calls.jsonl").read_text().splitlines()
        assert len(calls) == 1, (calls, outs)
    assert "another sweep is running it" in "".join(err for _, err in outs), outs
    assert {p.returncode for p in procs} <= {0, 1}, outs  # 1: a seed was left to the other sweep


def test_sweep_resumes_the_newest_run_that_has_a_config(tmp_path):
    """A run directory killed before its config.yaml was written holds nothing to resume: the
    sweep resumes the run before it, instead of failing on the empty one at every rerun."""
    script = tmp_path / "fake_search.py"
    script.write_text(FAKE_SEARCH.format(root=str(ROOT)))
    root = tmp_path / "sweep"
    unfinished = root / "seed1" / "search-fake-1"
    unfinished.mkdir(parents=True)
    (unfinished / "config.yaml").write_text("seed: 1\nmethod: evolutionary\n")
    (root / "seed1" / "search-try-20991231-235959").mkdir()  # newer, killed right after its mkdir
    out = run_script(
        ROOT / "scripts" / "sweep_seeds.sh",
        "--seeds",
        "1",
        "--root",
        root,
        "--script",
        script,
        env={"PYTHON": sys.executable},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"== seed 1: resuming {unfinished}" in out.stdout
    assert (unfinished / "genotype.json").exists()


def test_sweep_reports_a_search_that_wrote_no_genotype(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("")
    result = run_script(
        ROOT / "scripts" / "sweep_seeds.sh",
        "--seeds",
        "4",
        "--root",
        tmp_path / "r",
        "--script",
        script,
        env={"PYTHON": sys.executable},
    )
    assert result.returncode == 1
    assert f"== seed 4: the search exited without writing genotype.json under {tmp_path}/r/seed4" in result.stderr


def test_sweep_keeps_one_group_a_root_and_names_it(tmp_path):
    """A control's sweep does not skip or resume the method's run of the same seed, nor the reverse."""
    script = tmp_path / "fake_search.py"
    script.write_text(FAKE_SEARCH.format(root=str(ROOT)))
    root = tmp_path / "sweep"
    env = {"PYTHON": sys.executable}
    sweep = [ROOT / "scripts" / "sweep_seeds.sh", "--seeds", "1", "--root", root, "--script", script, "--"]
    first = run_script(*sweep, env=env)  # the fake writes method: evolutionary and no scores (perturb-val's)
    assert first.returncode == 0, first.stderr
    assert f"== sweep: search with perturb-val scores, seeds 1, under {root}" in first.stdout
    for flags in (["--scores", "random"], ["--scores=random"]):
        refused = run_script(*sweep, *flags, env=env)
        assert_one_line_error(
            refused,
            f"{root}/seed1/search-fake-1 holds a run of evolutionary with perturb-val scores, not this sweep's "
            f"search with random scores (a control): one --root per method and control",
        )
    (root / "seed1" / "search-fake-1" / "config.yaml").write_text("seed: 1\nmethod: supernet\n")
    supernet_root = run_script(*sweep[:-3], "--script", ROOT / "search_evolutionary.py", "--", env=env)
    assert_one_line_error(
        supernet_root, "holds a run of supernet with perturb-val scores, not this sweep's evolutionary"
    )


@pytest.mark.parametrize(
    "args, fragment",
    [
        ("--root {root} --script {script}", "--seeds is required"),
        ("--seeds 1,b --root {root} --script {script}", "seed '1,b' in --seeds"),
        (
            "--seeds 99999999999999999999 --root {root} --script {script}",
            "seed '99999999999999999999' in --seeds: expected integers from 0 to 2147483647 without leading zeros",
        ),
        ("--seeds 2147483648 --root {root} --script {script}", "seed '2147483648' in --seeds: expected integers"),
        ("--seeds 007 --root {root} --script {script}", "seed '007' in --seeds: expected integers"),
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
def test_sweep_two_seeds_of_tiny_search(tmp_path, digits_root, finished_search):
    root = tmp_path / "sweep"
    # seed 3 finished before (the session's shared tiny search, moved in as a user would): skipped
    shutil.copytree(finished_search[0], root / "seed3" / finished_search[0].name)
    sweep = [
        ROOT / "scripts" / "sweep_seeds.sh",
        "--seeds",
        "1 3",
        "--root",
        root,
        "--",
        *tiny_args(digits_root, None, "--note", "tiny", "--npop", "1"),
    ]
    env = {"PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    result = run_script(*sweep, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "== seed 1: new run under" in result.stdout and "== seed 3: finished" in result.stdout
    for seed in (1, 3):
        assert len(load_genotype(root / f"seed{seed}").normal) == 8  # one finished run per seed
    again = run_script(*sweep, env=env)
    assert again.returncode == 0 and again.stdout.count("skipped") == 2, again.stdout
    table = run_script(sys.executable, "scripts/collect_runs.py", root)
    assert table.returncode == 0, table.stderr
    assert table.stdout.count("| finished |") == 2 and "| 1 | evolutionary |" in table.stdout
    pair = run_script(sys.executable, "scripts/collect_runs.py", root, "--top", "2", "--out", tmp_path / "pair.json")
    assert pair.returncode == 0, pair.stderr  # ranked by the runs' val_acc (no NAS-Bench-301 here)
    assert len(load_genotype(tmp_path / "pair.json").reduce) == 8


@pytest.mark.parametrize("state", ["running", "finished"])
def test_sweep_refuses_a_seed_folder_holding_another_seeds_run(tmp_path, state):
    script = tmp_path / "fake_search.py"
    script.write_text(FAKE_SEARCH.format(root=str(ROOT)))
    other = tmp_path / "sweep" / "seed5" / "search-fake-7"
    other.mkdir(parents=True)
    (other / "config.yaml").write_text("seed: 7\nmethod: evolutionary\n")
    (other / "state.json").write_text(json.dumps({"status": state}))
    if state == "finished":
        (other / "genotype.json").write_text("{}")
    result = run_script(
        ROOT / "scripts" / "sweep_seeds.sh",
        "--seeds",
        "1 5",
        "--root",
        tmp_path / "sweep",
        "--script",
        script,
        env={"PYTHON": sys.executable},
    )
    assert_one_line_error(result, f"{other} holds a run of seed 7, not 5: move it out of seed5/")
    assert not (tmp_path / "sweep" / "seed1").exists() and not (other / "calls.jsonl").exists()


def test_sweep_rerun_of_a_planted_checkpoint_runs_no_code(tmp_path, digits_root):
    """The sweep resumes every unfinished search-* folder by itself: a planted checkpoint in one is refused."""
    from nas.core.config import parse, to_dict
    from nas.core.files import write_json, write_yaml
    from nas.search.config import EvolutionaryConfig

    run_dir = tmp_path / "sweep" / "seed1" / "search-try-20250101-000000"
    cfg, _ = parse(EvolutionaryConfig, ["--preset", "tiny", "--fast", "--loader", "torch", "--seed", "1"])
    write_yaml(run_dir / "config.yaml", {"method": "evolutionary", **to_dict(cfg)})
    write_json(run_dir / "state.json", {"status": "running"})
    marker = tmp_path / "pwned"
    plant_checkpoint(run_dir / "checkpoints" / "last.pt", marker, done=0, history=[])
    result = run_script(
        ROOT / "scripts" / "sweep_seeds.sh",
        "--seeds",
        "1",
        "--root",
        tmp_path / "sweep",
        "--",
        "--train_path",
        digits_root,
        "--loader",
        "torch",
        "--no-progress",
        env={"PYTHON": sys.executable, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 1 and f"== seed 1: resuming {run_dir}" in result.stdout, result.stderr
    refusals = [line for line in result.stderr.splitlines() if line.startswith("error: --resume")]
    assert len(refusals) == 1 and "last.pt holds a posix.system object" in refusals[0], result.stderr
    assert not marker.exists()
