import pytest

from nas.core import distributed as D
from nas.core.errors import UserError


def test_single_process_without_torchrun(monkeypatch):
    for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "SLURM_PROCID"):
        monkeypatch.delenv(var, raising=False)
    env = D.init_distributed("local", "cpu")
    assert (env.rank, env.world_size, env.is_main, env.distributed) == (0, 1, True, False)
    assert D.all_gather_object({"a": 1}) == [{"a": 1}]
    assert D.check_agreement((1, 2), "x") == (1, 2)


def test_global_rank_comes_from_slurm_procid_not_localid(monkeypatch):
    monkeypatch.setenv("SLURM_PROCID", "5")
    monkeypatch.setenv("SLURM_LOCALID", "1")
    monkeypatch.setenv("SLURM_NTASKS", "1")  # world 1: no group is made, but the ranks are read
    env = D.init_distributed("slurm", "cpu")
    assert (env.rank, env.local_rank) == (5, 1)


def test_slurm_without_srun_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("SLURM_PROCID", raising=False)
    with pytest.raises(UserError, match="launch with srun"):
        D.init_distributed("slurm", "cpu")


def test_bad_rank_variable(monkeypatch):
    monkeypatch.setenv("RANK", "zero")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    with pytest.raises(UserError, match="RANK='zero' is not an integer"):
        D.init_distributed("local", "cpu")


@pytest.mark.parametrize(
    "omp, cores, local, launcher, expected",
    [
        (None, 16, 2, {}, 8),  # two processes on the machine share its cores
        (None, 16, 1, {"LOCAL_WORLD_SIZE": "4"}, 4),  # the launcher's count when it says more
        (None, 3, 4, {}, 1),  # never below one thread
        ("2", 16, 2, {}, None),  # the user's OMP_NUM_THREADS wins
    ],
)
def test_threads_per_process(monkeypatch, omp, cores, local, launcher, expected):
    import torch

    for var in ("OMP_NUM_THREADS", "LOCAL_WORLD_SIZE", "SLURM_NTASKS_PER_NODE"):
        monkeypatch.delenv(var, raising=False)
    if omp:
        monkeypatch.setenv("OMP_NUM_THREADS", omp)
    for var, value in launcher.items():
        monkeypatch.setenv(var, value)
    monkeypatch.setattr(D.os, "sched_getaffinity", lambda pid: set(range(cores)))
    before = torch.get_num_threads()
    try:
        assert D.set_threads(local) == (expected or before)
    finally:
        torch.set_num_threads(before)


def exits_with(watchdog, counts_over_time):
    """Feed the watchdog (counters, time) readings; the message it exits with, or None."""
    with pytest.raises(SystemExit) as exc:
        for counts, now in counts_over_time:
            watchdog._check(counts, now)
        raise SystemExit(None)
    return exc.value.code


def test_watchdog_names_the_rank_whose_heartbeat_stopped(monkeypatch, capsys, tmp_path):
    watchdog = D.PeerWatchdog(0, 3, store=None)
    watchdog.run_dir = tmp_path
    monkeypatch.setattr(D.os, "_exit", lambda code: (_ for _ in ()).throw(SystemExit(code)))
    stale = D.PeerWatchdog.STALE
    alive = [([1, 1, 1], 0.0), ([2, 2, 2], stale / 2), ([3, 3, 3], stale + 1)]
    assert exits_with(watchdog, alive) is None and capsys.readouterr().err == ""
    rank1_dead = [([4, 3, 4], stale + 2), ([5, 3, 5], 2 * stale + 1.5)]
    assert exits_with(watchdog, rank1_dead) == D.PeerWatchdog.EXIT_CODE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: lost rank 1 ") and f"--resume {tmp_path}" in err


def test_watchdog_gives_up_when_the_store_is_gone(monkeypatch, capsys):
    watchdog = D.PeerWatchdog(1, 2, store=None)
    monkeypatch.setattr(D.os, "_exit", lambda code: (_ for _ in ()).throw(SystemExit(code)))
    stale = D.PeerWatchdog.STALE
    assert exits_with(watchdog, [([1, 1], 0.0), ([-1], 1.0), ([-1], stale / 2), ([2, 2], stale)]) is None
    assert exits_with(watchdog, [([-1], stale + 1), ([-1], 2 * stale + 2)]) == D.PeerWatchdog.EXIT_CODE
    err = capsys.readouterr().err
    assert err.startswith("error: lost the rendezvous store") and "start the run again" in err


@pytest.mark.slow
def test_a_killed_rank_ends_its_peer_with_one_line_and_the_resume_command(digits_root, tmp_path):
    """Two launchers as two nodes (torchrun, gloo, CPU): SIGKILL rank 1 during phase 1; rank 0
    exits within the watchdog's time with the lost rank and the --resume command."""
    import os
    import subprocess
    import sys
    import time

    import psutil

    from tests.helpers import ROOT

    save, port = tmp_path / "runs", D._free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    args = [
        "--preset",
        "tiny",
        "--batch_size",
        "8",
        "--stage_epochs",
        "3",
        "--train_path",
        digits_root,
        "--save",
        save,
        "--loader",
        "torch",
        "--no-progress",
    ]
    launchers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nnodes",
                "2",
                "--node_rank",
                str(node),
                "--nproc_per_node",
                "1",
                "--master_addr",
                "127.0.0.1",
                "--master_port",
                str(port),
                str(ROOT / "search_evolutionary.py"),
                *map(str, args),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for node in range(2)
    ]
    try:
        deadline = time.time() + 300
        while not list(save.glob("*/log_rank1.txt")):
            assert time.time() < deadline, "the search did not start"
            time.sleep(0.5)
        time.sleep(2)  # inside phase 1
        for worker in psutil.Process(launchers[1].pid).children(recursive=True):
            worker.kill()
        killed = time.time()
        _, err = launchers[0].communicate(timeout=120)
        took = time.time() - killed
    finally:
        for launcher in launchers:
            launcher.kill()
            launcher.wait()
    run_dir = next(save.iterdir())
    ours = [line for line in err.splitlines() if line.startswith("error: ")]
    assert ours == [
        f"error: lost rank 1 (no sign of life for {D.PeerWatchdog.STALE:.0f}s): this process stops too; "
        f"launch every process again with --resume {run_dir}"
    ], err[-3000:]
    assert launchers[0].returncode != 0 and took < 3 * D.PeerWatchdog.STALE
