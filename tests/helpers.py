"""What several test folders share: the repository's paths and running a script as a user would."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The shared reference data sits beside the checkout (in CI too); tests that need it skip without it.
SHARED = ROOT.parent / "shared"


def run_script(*args, env=None, cwd=ROOT):
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, cwd=cwd, env={**os.environ, **(env or {})}, timeout=600
    )


def assert_one_line_error(result, fragment):
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert fragment in result.stderr, result.stderr


def load_script(name: str, folder: str = "scripts"):
    """A script of scripts/ (or benchmarks/) as a module (neither is a package)."""
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), ROOT / folder / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- tiny searches as a user runs them ------------------------------------------------------


def run_search(script, *args, cwd=ROOT, timeout=600, check=True, env_extra=None):
    """A search script in a subprocess, one thread (as each of the parallel tests gets)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", **(env_extra or {})}
    proc = subprocess.run(
        [sys.executable, str(ROOT / script), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def tiny_args(data, save, *extra):
    """The tiny preset at its cheapest: one epoch of one batch of 8 a stage, one fine-tuning step.
    `save` None leaves --save to the caller (the seed sweep sets it per seed)."""
    return [
        "--preset",
        "tiny",
        "--fast",
        "--stage_epochs",
        "1",
        "--batch_size",
        "8",
        "--train_path",
        data,
        *(["--save", save] if save is not None else []),
        "--loader",
        "torch",
        "--no-progress",
        *extra,
    ]


def only_run_dir(save: Path) -> Path:
    dirs = [d for d in save.iterdir() if d.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


# --- planted files ----------------------------------------------------------------------------


class ShellCommand:
    """Unpickles by running `touch <marker>`, as a planted checkpoint would run any command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


def plant_checkpoint(path: Path, marker: Path, **content) -> None:
    """A torch checkpoint at `path` with the keys of `content` whose loading (without
    weights_only) would create `marker`."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**content, "payload": ShellCommand(marker)}, path)


# --- a full disk --------------------------------------------------------------------------------


def fill_disk_after(monkeypatch, writes: int) -> None:
    """From the (writes + 1)-th atomic write on, the disk is full: every fsync and every flush of
    a run's log file fails with ENOSPC, as they do when the device fills up (in-process runs)."""
    import errno

    from nas.core import rundir

    count = [0]

    def full() -> OSError:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    real_fsync = os.fsync

    def fsync(fd):
        count[0] += 1
        if count[0] > writes:
            raise full()
        real_fsync(fd)

    real_flush = rundir._LogFile.flush

    def flush(self):
        if count[0] >= writes:
            raise full()
        real_flush(self)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(rundir._LogFile, "flush", flush)


# --note values that are not one name: a path, a separator, a control character, nothing, too long
BAD_NOTES = ["../../../x", "a/b", "a\\b", "a\nb", "tab\there", "", " ", "..", "x..y", "n" * 201]
