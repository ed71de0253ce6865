"""The report of an evaluation run (python -m nas.report EVAL_RUN): fabricated runs, finished,
resumed, unfinished and older than epochs.jsonl, and the page opened in headless Chromium."""

import json
import shutil
import subprocess

import pytest

from nas.core.config import to_dict
from nas.evaluation.config import CifarEvalConfig
from nas.genotype import load_genotype, save_genotype
from nas.report import evaluation as eval_page
from nas.report import sweep as sweep_page
from nas.tools.report import main
from tests.report.checks import IMAGE_CHECK, check_page
from tests.report.fabricate import fabricate


def epoch(e, top1, *, seconds=10.0):
    return {
        "epoch": e,
        "lr": 0.025 * (1 - e / 6),
        "drop_path_prob": 0.3 * (e - 1) / 6,
        "train_loss": 2.0 - 0.1 * e,
        "train_top1": 20.0 + e,
        "val_loss": 2.1 - 0.1 * e,
        "val_top1": top1,
        "val_top5": 60.0 + e,
        "seconds": seconds,
    }


def fabricate_eval(run, *, finished=True):
    """Six epochs, killed after writing epoch 4 and resumed after epoch 3 (epoch 4 trained twice)."""
    run.mkdir(parents=True)
    cfg = to_dict(CifarEvalConfig(epochs=6, layers=5, init_channels=8, arch="DARTS_V2"))
    (run / "config.yaml").write_text(json.dumps({"eval_task": "cifar", **cfg}))  # JSON is YAML
    save_genotype(run / "genotype.json", load_genotype("DARTS_V2"))
    lines = [
        epoch(1, 30.0),
        epoch(2, 41.5),
        epoch(3, 45.25),
        epoch(4, 11.0),
        {"resumed_after": 3},
        epoch(4, 47.75, seconds=12.5),
        epoch(5, 52.5),
        epoch(6, 51.0),
    ]
    if not finished:
        lines = lines[:2]
    (run / "epochs.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"epoch": 7, "lr"')
    figures = {"dataset": "cifar10", "params_m": 0.067330, "macs_m": 11.27}
    best = (
        {"best_top1": 52.5, "best_epoch": 5, "final_top1": 51.0, "final_top5": 66.0}
        if finished
        else {"best_top1": 41.5, "best_epoch": 2, "final_top1": 41.5, "final_top5": 62.0}
    )
    state = {
        "status": "finished" if finished else "running",
        "eval_task": "cifar",
        "epoch": 6 if finished else 2,
        "epochs": 6,
        "elapsed_s": 65.5,
        **figures,
        **best,
    }
    (run / "state.json").write_text(json.dumps(state))
    if finished:
        summary = {
            "status": "finished",
            "eval_task": "cifar",
            "arch": "DARTS_V2",
            "epochs": 6,
            "wall_time_s": 65.5,
            "gpu_hours": 0.0,
            "seed": 0,
            "world_size": 1,
            "device": "cpu",
            **figures,
            **best,
        }
        (run / "summary.json").write_text(json.dumps(summary))
    return run


def report(path, *extra):
    out = path.parent / f"{path.name}.html"
    main([str(path), "--out", str(out), *map(str, extra)])
    return out


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run = fabricate_eval(tmp_path_factory.mktemp("eval") / "eval-cifar-20240101-000000")
    return run, report(run)


def test_evaluation_report_draws_every_epoch_across_the_resume(finished):
    run, out = finished
    text = out.read_text()
    page = check_page(text, eval_page.SECTIONS)
    assert {"fig-curves", "fig-schedules", "fig-normal", "fig-reduce", "fig-epoch_time"} <= page.ids
    assert len(page.images) == 5
    assert "<h1>Evaluation report: " in text and "Phase 1" not in text and 'class="banner finished"' in text
    epochs = text.split('<table class="epochs">', 1)[1].split("</table>", 1)[0]
    assert epochs.count("<tr>") == 1 + 6  # epoch 4 once: its record after the resume; the cut line skipped
    assert '<td class="kept">52.50</td>' in epochs and ">47.75<" in epochs and ">11.00<" not in epochs
    assert "<tr><td>resumed after epoch</td><td>3</td></tr>" in text
    assert "<tr><td>best epoch</td><td>5</td></tr>" in text and ">0.067330<" in text and ">11.27<" in text
    assert ">10.42<" in text  # mean seconds per epoch: (5 * 10 + 12.5) / 6
    config = text.split('<table class="config">', 1)[1].split("</table>", 1)[0]
    assert '<tr><td>epochs</td><td class="changed">6</td><td>600</td></tr>' in config
    assert "<tr><td>cutout_length</td><td>16</td><td>16</td></tr>" in config


def test_unfinished_and_old_evaluation_runs(tmp_path):
    run = fabricate_eval(tmp_path / "eval-going-20240101-000000", finished=False)
    text = report(run).read_text()
    check_page(text, eval_page.SECTIONS)
    assert 'class="banner unfinished"' in text and "unfinished (epoch 2/6)" in text
    assert text.split('<table class="epochs">', 1)[1].split("</table>", 1)[0].count("<tr>") == 1 + 2
    # a run older than epochs.jsonl: its log's epoch lines, and the resume it logged
    (run / "epochs.jsonl").unlink()
    (run / "log_rank0.txt").write_text(
        "01/01 00:00:01 [rank 0] epoch 1/6 lr 0.025 drop_path 0.000 | train loss 2.3000 top1 11.00 | val loss 2.2000 "
        "top1 12.50 top5 50.00 | best top1 12.50 (epoch 1) | 9.5s\n"
        "01/01 00:00:09 [rank 0] cifar evaluation in runs/x (resumed after epoch 1, world size 1, device cpu)\n"
        "01/01 00:00:19 [rank 0] epoch 2/6 lr 0.02 drop_path 0.050 | train loss 2.1000 top1 19.50 | val loss 2.0000 "
        "top1 21.25 top5 60.00 | best top1 21.25 (epoch 2) | 9.0s\n"
    )
    text = report(run).read_text()
    assert "from log_rank0.txt (this run predates epochs.jsonl); 2 epochs" in text and ">21.25<" in text
    assert "<tr><td>resumed after epoch</td><td>1</td></tr>" in text


def test_sweep_lists_evaluations_apart_and_links_their_own_reports(tmp_path):
    root = tmp_path / "runs"
    fabricate(root / "search-s1-20240101-000000")
    fabricate_eval(root / "eval-cifar-20240101-000000")
    text = report(root).read_text()
    check_page(text, sweep_page.SECTIONS)
    evaluations = text.split('<table class="evaluations">', 1)[1].split("</table>", 1)[0]
    assert "eval-cifar-20240101-000000/report.html" in evaluations and ">52.50<" in evaluations
    assert "eval-cifar" not in text.split('<table class="runs">', 1)[1].split("</table>", 1)[0]
    assert "<h1>Evaluation report: " in (root / "eval-cifar-20240101-000000" / "report.html").read_text()


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not on PATH (make setup installs it)")
def test_evaluation_report_renders_in_headless_chromium(finished, tmp_path):
    _, out = finished
    checked = tmp_path / "checked.html"
    checked.write_text(out.read_text().replace("</body>", IMAGE_CHECK + "</body>"))
    chromium = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000"]
    dom = subprocess.run(chromium + ["--dump-dom", checked.as_uri()], capture_output=True, text=True, timeout=180)
    assert 'data-images="5 0"' in dom.stdout, dom.stderr[-2000:]
