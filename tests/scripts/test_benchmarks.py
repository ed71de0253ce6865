"""The benchmark scripts run and report every figure with its target (tiny sizes; figures
are checked for consistency, never for speed)."""
import json
import subprocess
import sys

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.slow


def run(script, *args):
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, timeout=600, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_memory_benchmark_reports_ratios_and_breakdown(tmp_path):
    out = run("bench_memory.py", "--batch_size", 4, "--init_channels", 4, "--layers", 3, "--warmup", 0, "--reps", 1,
              "--threads", 1, "--breakdown", "--json", tmp_path / "m.json")
    assert "target: phase-1 memory <= 0.25 x supernet" in out
    res = json.loads((tmp_path / "m.json").read_text())
    nets = res["networks"]
    assert nets["supernet"]["memory_ratio"] == 1.0
    saved = {k: sum(v.values()) for k, v in res["saved_activations_mb"].items()}
    assert saved["phase3"] < saved["phase1"] < saved["supernet"]  # fewer operations, fewer saved tensors
    assert len(res["population_phase1_saved_ratio"]["per_model"]) == 4


def test_step_benchmark_reports_every_configuration(tmp_path):
    out = run("bench_step.py", "--batch_size", 2, "--eval_batch_size", 2, "--init_channels", 4, "--layers", 3,
              "--warmup", 0, "--reps", 1, "--json", tmp_path / "s.json")
    res = json.loads((tmp_path / "s.json").read_text())
    assert {(r["network"], r["format"], r["precision"]) for r in res["rows"]} == {
        (n, f, p) for n in ("search phase-1", "NetworkCIFAR") for f in ("contiguous", "channels_last")
        for p in ("fp32", "bf16")}
    assert "switched off" in out and res["switched_off"]["op"] == "sep_conv_5x5"


def test_published_setting_model():
    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_scaling import published_model

    m = published_model()
    # 17 trainings of 5 epochs x 196 steps, 14 x 2 fine candidates x 130 steps, 12 topology candidates x 180 steps
    assert m["phases2_4_original"] == 17 * 5 * 196 + 14 * 2 * 130 + 12 * 180
    assert m["phases2_4_ours"] < m["phases2_4_original"] / 3
