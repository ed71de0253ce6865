"""Run directories shared by processes: names taken atomically, a lock naming the process that
runs a run, and what killed writers leave beside an output."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from nas.core import rundir
from nas.core.distributed import DistEnv
from nas.core.errors import UserError
from nas.core.files import owner_tag, remove_stale_partials

ENV = DistEnv()


@pytest.fixture
def live_pid():
    """A process of this host that keeps running during the test."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


@pytest.fixture
def dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture(autouse=True)
def _release():
    yield
    rundir.release_run_dirs()


def plant_lock(run_dir, **record):
    (run_dir / rundir.LOCK).write_text(json.dumps({"host": socket.gethostname(), "started": "then", **record}))


def test_runs_started_in_the_same_second_get_their_own_directories(tmp_path, monkeypatch):
    monkeypatch.setattr(time, "strftime", lambda fmt, *a: "20260101-000000")
    dirs = [rundir.new_run_dir(str(tmp_path), "search", "try", ENV) for _ in range(3)]
    assert [d.name for d in dirs] == [
        "search-try-20260101-000000",
        "search-try-20260101-000000-2",
        "search-try-20260101-000000-3",
    ]
    assert all((d / rundir.LOCK).is_file() for d in dirs)  # each is claimed by the run that made it


def test_a_run_that_is_running_is_refused(tmp_path, live_pid):
    plant_lock(tmp_path, pid=live_pid)
    with pytest.raises(UserError, match=f"already running \\(pid {live_pid} on {socket.gethostname()}"):
        rundir.lock_run_dir(tmp_path, "--resume x")
    assert json.loads((tmp_path / rundir.LOCK).read_text())["pid"] == live_pid  # left as it was


def test_a_run_on_another_host_is_refused_since_its_process_cannot_be_seen(tmp_path, dead_pid):
    plant_lock(tmp_path, pid=dead_pid, host="elsewhere.example")
    with pytest.raises(UserError, match="pid .* on elsewhere.example .* if that process is gone, delete"):
        rundir.lock_run_dir(tmp_path, "--resume x")


def test_the_lock_of_a_killed_process_is_taken_over_and_released(tmp_path, dead_pid):
    plant_lock(tmp_path, pid=dead_pid)
    rundir.lock_run_dir(tmp_path, "--resume x")
    assert json.loads((tmp_path / rundir.LOCK).read_text())["pid"] == os.getpid()
    rundir.release_run_dirs()
    assert not (tmp_path / rundir.LOCK).exists()


def test_a_restart_of_the_same_launcher_job_takes_the_lock_over(tmp_path, live_pid, monkeypatch):
    """SLURM requeues a job on another node; torchrun restarts its workers: the old rank 0's
    lock names the same job, so the new rank 0 continues the run."""
    plant_lock(tmp_path, pid=live_pid, host="node7", SLURM_JOB_ID="4242")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    rundir.lock_run_dir(tmp_path, "--resume x")
    assert json.loads((tmp_path / rundir.LOCK).read_text())["pid"] == os.getpid()


def test_an_unreadable_lock_is_one_line(tmp_path):
    (tmp_path / rundir.LOCK).write_text("{not json")
    with pytest.raises(UserError, match="run.lock is unreadable: if no process runs this run any more, delete it"):
        rundir.lock_run_dir(tmp_path, "--resume x")


def test_partial_outputs_of_killed_writers_are_removed_and_live_ones_kept(tmp_path, dead_pid, live_pid):
    host = socket.gethostname()
    dead = tmp_path / f".root.{host}-{dead_pid}.abc123.tmp"
    moved = tmp_path / f".root.{host}-{dead_pid}.def456.old"
    alive = tmp_path / f".root.{host}-{live_pid}.ghi789.tmp"
    other_host = tmp_path / f".root.elsewhere-{dead_pid}.jkl012.tmp"
    for d in (dead, moved, alive, other_host):
        d.mkdir()
        (d / "x.npy").write_bytes(b"x")
    assert sorted(remove_stale_partials(tmp_path, "root")) == sorted([dead, moved])
    assert alive.is_dir() and other_host.is_dir() and owner_tag() == f"{host}-{os.getpid()}"
