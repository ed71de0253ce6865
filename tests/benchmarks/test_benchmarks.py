"""The benchmark scripts run and report every figure with its target (tiny sizes; figures
are checked for consistency, never for speed)."""

import json
import subprocess
import sys

import pytest

from tests.helpers import ROOT, load_script

pytestmark = pytest.mark.slow


def run(script, *args):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_memory_benchmark_reports_ratios_and_breakdown(tmp_path):
    out = run(
        "bench_memory.py",
        "--batch_size",
        4,
        "--init_channels",
        4,
        "--layers",
        3,
        "--warmup",
        0,
        "--reps",
        1,
        "--threads",
        1,
        "--breakdown",
        "--json",
        tmp_path / "m.json",
    )
    assert "target: phase-1 memory <= 0.25 x supernet" in out
    res = json.loads((tmp_path / "m.json").read_text())
    nets = res["networks"]
    assert nets["supernet"]["memory_ratio"] == 1.0
    saved = {k: sum(v.values()) for k, v in res["saved_activations_mb"].items()}
    assert saved["phase3"] < saved["phase1"] < saved["supernet"]  # fewer operations, fewer saved tensors
    assert len(res["population_phase1_saved_ratio"]["per_model"]) == 4


def test_step_benchmark_reports_every_configuration(tmp_path):
    out = run(
        "bench_step.py",
        "--batch_size",
        2,
        "--eval_batch_size",
        2,
        "--init_channels",
        4,
        "--layers",
        3,
        "--warmup",
        0,
        "--reps",
        1,
        "--json",
        tmp_path / "s.json",
    )
    res = json.loads((tmp_path / "s.json").read_text())
    assert {(r["network"], r["format"], r["precision"]) for r in res["rows"]} == {
        (n, f, p)
        for n in ("search phase-1", "NetworkCIFAR")
        for f in ("contiguous", "channels_last")
        for p in ("fp32", "bf16")
    }
    assert "switched off" in out and res["switched_off"]["op"] == "sep_conv_5x5"


def test_published_setting_model():
    m = load_script("bench_scaling.py", "benchmarks").published_model()
    # 17 trainings of 5 epochs x 196 steps, 14 x 2 fine candidates x 131 steps, 12 topology candidates x 181 steps
    assert m["phases2_4_original"] == 17 * 5 * 196 + 14 * 2 * 131 + 12 * 181
    assert m["phases2_4_ours"] < m["phases2_4_original"] / 3


def test_compile_benchmark_reports_every_case_and_the_published_model(tmp_path):
    out = run(
        "bench_compile.py",
        "--tiny",
        "--modes",
        "off",
        "--cases",
        "cifar_b128_fp32,phase1_b256_fp32,phase3_b256_fp32",
        "--warmup",
        0,
        "--reps",
        1,
        "--concurrent",
        2,
        "--json",
        tmp_path / "c.json",
    )
    res = json.loads((tmp_path / "c.json").read_text())
    assert [(r["case"], r["mode"], r["batch"]) for r in res["rows"]] == [
        ("cifar_b128_fp32", "off", 4),
        ("phase1_b256_fp32", "off", 8),
        ("phase3_b256_fp32", "off", 8),
    ]
    assert all(r["speedup"] == 1.0 and r["img_per_s"] > 0 for r in res["rows"])
    (model,) = res["published_model"]
    assert model["search_h"] == pytest.approx(model["phase1_h"] + model["phases2_4_h"]) and model["cifar_eval_h"] > 0
    assert res["concurrent"]["off"]["together_img_per_s"] > 0
    assert "tiny CPU-sized networks" in out and "modelled wall time" in out


def test_published_model_counts_capture_time_against_the_steps():
    bench_compile = load_script("bench_compile.py", "benchmarks")
    EVAL_STEPS, model_published = bench_compile.EVAL_STEPS, bench_compile.model_published

    def row(ms, compile_s):
        return {"step_ms": ms, "compile_s": compile_s}

    eager = {(c, "off"): row(100, 0) for c in ("phase1_b256_fp32", "phase3_b256_fp32", "cifar_b128_fp32")}
    cheap = {
        **eager,
        **{(c, "graphs"): row(40, 2) for c in ("phase1_b256_fp32", "phase3_b256_fp32", "cifar_b128_fp32")},
    }
    dear = {
        **eager,
        **{(c, "graphs"): row(40, 60) for c in ("phase1_b256_fp32", "phase3_b256_fp32", "cifar_b128_fp32")},
    }
    base, fast, slow = model_published(eager, "off"), model_published(cheap, "graphs"), model_published(dear, "graphs")
    assert base["cifar_eval_h"] == pytest.approx(EVAL_STEPS * 0.1 / 3600)
    assert fast["capture_per_candidate_pays"] and not slow["capture_per_candidate_pays"]  # 71 steps save 4.3 s
    assert fast["search_h"] < base["search_h"] < slow["search_h"]  # a minute a capture would not pay


def test_memory_benchmark_models_the_largest_batch_per_resolution(tmp_path):
    out = run(
        "bench_memory.py",
        "--resolutions",
        "32,64",
        "--batch_size",
        4,
        "--init_channels",
        4,
        "--layers",
        3,
        "--warmup",
        0,
        "--reps",
        1,
        "--threads",
        1,
        "--json",
        tmp_path / "r.json",
    )
    assert "(modelled)" in out
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert [(r["resolution"], r["network"]) for r in rows] == [
        (32, "supernet"),
        (32, "phase1"),
        (64, "supernet"),
        (64, "phase1"),
    ]
    for sup, one in zip(rows[::2], rows[1::2]):
        assert sup["memory_ratio"] == 1.0 and one["per_image_mb"] < sup["per_image_mb"]
        assert one["modelled_max_batch"] > sup["modelled_max_batch"] > 0
