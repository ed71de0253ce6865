"""Search and evaluate on a user's own class folders (write_datasets.py folder), at 32 and 64 px:
the commands of docs/own-data.md ("Search on your own images"), end to end on the CPU."""

import json
import sys

import pytest

from tests.fake_data import class_folders
from tests.helpers import ROOT, run_script, run_search, tiny_args

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("size, evaluation", [(32, "train_eval_cifar.py"), (64, "train_eval_imagenet.py")])
def test_write_search_evaluate_at_the_datas_size(tmp_path, size, evaluation):
    src = class_folders(tmp_path / "images", per_class=10)
    root = tmp_path / f"root{size}"
    wrote = run_script(
        sys.executable,
        ROOT / "scripts" / "write_datasets.py",
        "folder",
        "--src",
        src,
        "--out",
        root,
        "--name",
        "mine",
        "--size",
        size,
        "--skip-bad",
        "--workers",
        "1",
    )
    assert wrote.returncode == 0, wrote.stderr
    run_search(
        "search_evolutionary.py",
        *tiny_args(
            root,
            tmp_path / "search",
            "--val_size",
            "4",
            "--train_subset",
            "16",
            "--image_size",
            size,
            "--npop",
            "1",
            "--phase1_procs",
            "1",
        ),
    )
    run_dir = next((tmp_path / "search").iterdir())
    genotype = json.loads((run_dir / "genotype.json").read_text())
    # the root's own name, not the preset's `dataset: digits` that config.yaml records
    assert json.loads((run_dir / "summary.json").read_text())["data_label"] == "mine"
    assert "dataset: digits" in (run_dir / "config.yaml").read_text()
    assert len(genotype["normal"]) == 8
    # the other evaluation is refused, in one line naming the right one
    other = "train_eval_imagenet.py" if size == 32 else "train_eval_cifar.py"
    common = [
        "--arch",
        run_dir,
        "--data",
        root,
        "--epochs",
        "1",
        "--lr_scheduler",
        "cosine",
        "--batch_size",
        "8",
        "--init_channels",
        "8",
        "--layers",
        "3",
        "--device",
        "cpu",
        "--workers",
        "0",
        "--loader",
        "torch",
        "--no-progress",
        "--save",
        tmp_path / "eval",
    ]
    refused = run_script(sys.executable, ROOT / other, *common)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and f"with {evaluation}" in refused.stderr
    assert not (tmp_path / "eval").exists()
    done = run_script(sys.executable, ROOT / evaluation, *common, env={"OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(next((tmp_path / "eval").glob("*/summary.json")).read_text())
    assert summary["status"] == "finished" and summary["dataset"] == "mine" and summary["epochs"] == 1
    assert summary["eval_task"] == evaluation.removeprefix("train_eval_").removesuffix(".py")
