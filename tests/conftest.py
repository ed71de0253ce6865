import os
import sys

import pytest

from tests.helpers import ROOT



@pytest.fixture(autouse=True, scope="session")
def _few_threads():
    import torch

    torch.set_num_threads(int(os.environ.get("NAS_TEST_THREADS", "1")))


@pytest.fixture(scope="session")
def digits_root(tmp_path_factory):
    """The embedded data set, written once per session through the real writer."""
    import subprocess

    out = tmp_path_factory.mktemp("digits")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "write_datasets.py"), "digits", "--out", str(out),
                    "--overwrite"], check=True, capture_output=True)
    return out
