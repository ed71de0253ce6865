"""The Python API (nas/api.py): the command lines' flags and checks as keyword arguments, errors as
exceptions, and no process-wide state left behind, so that calls follow one another in one process."""

import logging
import random
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

from nas import api
from nas.core.errors import UserError
from tests.helpers import ROOT

EVAL_FLAGS = dict(
    epochs=1, init_channels=4, layers=3, batch_size=32, train_subset=64, workers=0, device="cpu", loader="torch"
)


def process_state():
    """What a run sets process-wide and a call must put back."""
    logger = logging.getLogger("nas")
    return {
        "handlers": list(logger.handlers),
        "level": logger.level,
        "propagate": logger.propagate,
        "signals": {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)},
        "threads": torch.get_num_threads(),
        "torch_rng": torch.get_rng_state().tolist(),
        "numpy_rng": np.random.get_state()[1].tolist(),
        "python_rng": random.getstate(),
    }


def test_keyword_arguments_are_the_flags():
    assert api._argv(dict(preset="tiny", fast=True, progress=False, seed=3, resume=None, shape=(1, 2))) == [
        "--preset", "tiny", "--fast", "--no-progress", "--seed", "3", "--shape", "1", "2",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda d, s: api.search("darts", train_path=d, save=s), "unknown search method 'darts'"),
        (lambda d, s: api.search("evolutionary", npop=0, train_path=d, save=s), "--npop 0: expected 1 or more"),
        (lambda d, s: api.search("evolutionary", preset="nope", save=s), "unknown preset 'nope'"),
        (lambda d, s: api.search("evolutionary", no_such_flag=1, save=s), "unrecognized arguments: --no_such_flag"),
        (lambda d, s: api.evaluate("NOPE", data=d, save=s, **EVAL_FLAGS), "unknown genotype 'NOPE'"),
        (lambda d, s: api.evaluate("DARTS_V2", network="resnet", data=d, save=s), "unknown network 'resnet'"),
    ],
)
def test_bad_input_raises_the_command_lines_error_and_writes_nothing(digits_root, tmp_path, call, message):
    before = process_state()
    with pytest.raises(UserError, match=re.escape(message)):
        call(digits_root, tmp_path / "runs")
    assert not (tmp_path / "runs").exists()
    assert process_state() == before


def test_two_evaluations_in_one_process_leave_no_state_and_agree(digits_root, tmp_path):
    torch.manual_seed(123)  # the caller's generators: a call must not move them
    before = process_state()
    first = api.evaluate("DARTS_V2", data=digits_root, save=tmp_path / "a", **EVAL_FLAGS)
    assert process_state() == before
    second = api.evaluate("DARTS_V2", data=digits_root, save=tmp_path / "b", **EVAL_FLAGS)
    assert process_state() == before
    assert first.run_dir.parent == tmp_path / "a" and (first.run_dir / "summary.json").is_file()
    assert first.summary["epochs"] == 1 and first.genotype == second.genotype
    # one seed, one result: the second call starts from the same state as the first
    assert first.summary["final_top1"] == second.summary["final_top1"]
    assert api.load_run(first.run_dir) == first
    page = api.report(first, out=tmp_path / "eval.html")
    assert page == tmp_path / "eval.html" and "<html" in page.read_text()


def test_load_run_refuses_what_is_not_a_finished_run(tmp_path):
    with pytest.raises(UserError, match="is not a directory"):
        api.load_run(tmp_path / "none")
    (tmp_path / "config.yaml").write_text("seed: 1\n")
    with pytest.raises(UserError, match="is not a finished run"):
        api.load_run(tmp_path)


def docs_example() -> str:
    """The first python block of docs/api.md."""
    text = (ROOT / "docs" / "api.md").read_text()
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)


@pytest.mark.slow
def test_the_documented_example_runs(digits_root, tmp_path):
    """docs/api.md's example as a notebook runs it (python -c: no main file, like a notebook's kernel),
    from a directory of its own holding the embedded data set at data/digits."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "digits").symlink_to(digits_root)
    proc = subprocess.run(
        [sys.executable, "-c", docs_example() + "\nprint('EXAMPLE DONE', result.genotype, trained.best_top1)"],
        capture_output=True, text=True, cwd=tmp_path, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "EXAMPLE DONE Genotype(" in proc.stdout
    assert (tmp_path / "runs").is_dir() and list((tmp_path / "runs").glob("search-*/report.html"))
