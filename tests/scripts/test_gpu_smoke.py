"""scripts/gpu_smoke.sh --rehearse: every part of the GPU smoke on the CPU, from a Python
with the packages but no install of the project (the script's PYTHONPATH alone), started
outside the repository; it ends with the table of parts, all passed."""

import os
import subprocess
import sys

import pytest

import nas
from tests.helpers import ROOT

PARTS = ("imports", "data", "bench_compile", "eval_cifar", "search_2ranks_stop", "search_2ranks_resume", "phase1_procs")


@pytest.mark.slow
def test_gpu_smoke_rehearsal_runs_every_part_on_the_cpu(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PY=sys.executable, OUT=str(tmp_path / "out"), RUNS=str(tmp_path / "runs"), DATA=str(tmp_path / "data"))
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_smoke.sh"), "--rehearse"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert f"import nas: {nas.__version__} {ROOT}/nas/__init__.py" in proc.stdout  # this checkout, not an install
    table = (tmp_path / "out" / "table.md").read_text()
    assert table in proc.stdout  # the table is printed at the end
    for part in PARTS:
        assert f"| {part} | " in table
    assert "| imports | ok |" in table and table.count("| exit 0 |") == len(PARTS) - 1
    assert "stopped by SIGTERM after" in (tmp_path / "out" / "search_2ranks_stop.log").read_text()
    assert (tmp_path / "out" / "search_summary.json").is_file() and (tmp_path / "out" / "eval_summary.json").is_file()
