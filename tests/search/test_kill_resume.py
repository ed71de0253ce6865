"""A search SIGKILLed at several moments (phase 1, the decisions, half-written files), or
stopped by SIGTERM and SIGUSR1, and resumed each time ends with complete, consistent files
and the uninterrupted genotype, on the default loader (FFCV)."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import ROOT, only_run_dir, run_search, tiny_args

PY = sys.executable

pytestmark = pytest.mark.slow


def start_and_kill(argv, ready) -> None:
    """Run a search script with `argv`; SIGKILL it as soon as `ready()` is true."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [PY, *map(str, argv)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.time() + 400
        while not ready():
            assert proc.poll() is None, "the search ended before the moment to kill it"
            assert time.time() < deadline, "the search did not reach the moment to kill it"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def decisions_done(run_dir) -> int:
    try:
        return len(json.loads((run_dir / "decisions.json").read_text()))
    except (OSError, ValueError):
        return 0


def test_killed_at_several_moments_then_resumed(finished_search, digits_root, tmp_path):
    straight, _ = finished_search  # the same search (seed 3), uninterrupted
    expected = json.loads((straight / "genotype.json").read_text())

    save = tmp_path / "killed"
    script = ROOT / "search_evolutionary.py"
    start_and_kill(
        [script, *tiny_args(digits_root, save, "--seed", "3", "--loader", "ffcv")],
        lambda: any(save.glob("*/valuation/model0.json")),
    )  # phase 1: one model's edge done
    run_dir = only_run_dir(save)
    resume = [script, "--resume", run_dir, "--no-progress"]
    start_and_kill(resume, lambda: decisions_done(run_dir) >= 1)  # right after the coarse selection's files
    start_and_kill(resume, lambda: decisions_done(run_dir) >= 6)  # among the fine decisions
    # killed while writing: what an atomic write leaves behind
    (run_dir / ".decisions.json.k1l2.tmp").write_text('[{"decision": 0')
    (run_dir / "checkpoints" / ".last.pt.k1l2.tmp").write_bytes(b"\x80\x02half")
    run_search("search_evolutionary.py", *resume[1:])

    decisions = json.loads((run_dir / "decisions.json").read_text())
    assert [d["decision"] for d in decisions] == list(range(1, 19))
    assert json.loads((run_dir / "genotype.json").read_text()) == expected
    for m in range(2):  # phase 1, killed after one edge, resumed to the same valuation
        a, b = (json.loads((d / "valuation" / f"model{m}.json").read_text())["matrix"] for d in (run_dir, straight))
        assert a == b
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["genotype"] == expected
    assert json.loads((run_dir / "state.json").read_text())["status"] == "finished"
    assert not list(run_dir.rglob("*.tmp"))


def start_and_signal(argv, ready, signum, env=None) -> tuple[int, str]:
    """Run a search script with `argv`; send `signum` once `ready()`; (exit status, stderr)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    proc = subprocess.Popen(
        [PY, *map(str, argv)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 400
    while not ready():
        assert proc.poll() is None, "the search ended before the moment to signal it"
        assert time.time() < deadline, "the search did not reach the moment to signal it"
        time.sleep(0.05)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=600)
    return proc.returncode, err


def test_sigterm_and_sigusr1_stop_at_a_safe_point_then_resume_to_the_uninterrupted_run(
    finished_search, digits_root, tmp_path
):
    straight, _ = finished_search  # the same search (seed 3), uninterrupted
    save = tmp_path / "stopped"
    script = ROOT / "search_evolutionary.py"
    code, err = start_and_signal(
        [script, *tiny_args(digits_root, save, "--seed", "3", "--loader", "ffcv")],
        lambda: any(save.glob("*/valuation/model0.json")),
        signal.SIGTERM,
    )
    run_dir = only_run_dir(save)
    resume_hint = rf"to continue: \S*search_evolutionary.py --resume {re.escape(str(run_dir))}"
    line = err.strip().splitlines()[-1]
    assert code == 143 and re.fullmatch(rf"stopped by SIGTERM after phase 1, model \d edge \d+; {resume_hint}", line), (
        err
    )
    assert decisions_done(run_dir) == 0

    # resumed in a SLURM job that asks to be requeued, stopped by SIGUSR1 (sbatch --signal) among the decisions
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "scontrol.txt"}\n')
    (bin_dir / "scontrol").chmod(0o755)
    slurm = {"SLURM_JOB_ID": "777", "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    resume = [script, "--resume", run_dir, "--no-progress"]
    code, err = start_and_signal(
        [*resume, "--requeue"], lambda: decisions_done(run_dir) >= 1, signal.SIGUSR1, env=slurm
    )
    stopped, requeued = err.strip().splitlines()[-2:]
    assert code == 138, err
    assert re.fullmatch(rf"stopped by SIGUSR1 after decision \d+/18 \(\w+\); {resume_hint}", stopped), err
    assert requeued == "SLURM job 777 requeued"
    assert (tmp_path / "scontrol.txt").read_text() == "requeue 777\n"
    done = decisions_done(run_dir)
    assert [d["decision"] for d in json.loads((run_dir / "decisions.json").read_text())] == list(range(1, done + 1))

    run_search("search_evolutionary.py", *resume[1:])
    for name in ("genotype.json", "valuation/model0.json", "valuation/model1.json"):
        a, b = (json.loads((d / name).read_text()) for d in (run_dir, straight))
        assert a.get("matrix", a) == b.get("matrix", b), name
    assert not list(run_dir.rglob("*.tmp"))
