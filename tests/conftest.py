import logging
import os
import shutil
import sys

import pytest
from filelock import FileLock

from tests.helpers import ROOT, only_run_dir, run_search, tiny_args


@pytest.fixture(autouse=True, scope="session")
def _few_threads():
    import torch

    torch.set_num_threads(int(os.environ.get("NAS_TEST_THREADS", "1")))


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory, worker_id):
    """A directory of this test session that every xdist worker sees (new each session)."""
    base = tmp_path_factory.getbasetemp()
    return base if worker_id == "master" else base.parent


def made_once(session_dir, name, make):
    """`session_dir/name`, made by `make(path)` by whichever worker asks first; the others wait."""
    out = session_dir / name
    with FileLock(str(out) + ".lock"):
        if not (out / ".done").exists():
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            make(out)
            (out / ".done").touch()
    return out


@pytest.fixture(scope="session")
def digits_root(session_dir):
    """The embedded data set, written once per session through the real writer."""
    import subprocess

    def write(out):
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "write_datasets.py"), "digits", "--out", str(out), "--overwrite"],
            check=True,
            capture_output=True,
        )

    return made_once(session_dir, "digits", write)


@pytest.fixture(scope="session")
def finished_search(session_dir, digits_root):
    """One finished tiny evolutionary search (seed 3, npop 2) on the default loader (FFCV),
    shared by every test that only reads it: the e2e checks, the kill/resume, rerun and
    phase1_procs comparisons, the report. Tests that change a run copy it first."""
    proc = {}

    def search(save):
        proc["run"] = run_search(
            "search_evolutionary.py", *tiny_args(digits_root, save, "--seed", "3", "--loader", "ffcv")
        )
        (save / "stdout.txt").write_text(proc["run"].stdout)

    save = made_once(session_dir, "evolutionary-seed3", search)
    return only_run_dir(save), (save / "stdout.txt").read_text()


@pytest.fixture(autouse=True)
def _fresh_nas_logger():
    """In-process runs point the "nas" logger at the test's captured output; a later test must
    not log into a capture that pytest has closed since."""
    yield
    root = logging.getLogger("nas")
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    # setup_logging stops propagation; pytest attaches its capture handlers to every logger that
    # does not propagate, so a later test that turns propagation on would see each record twice
    root.propagate = True
    root.setLevel(logging.NOTSET)
