"""The evaluation scripts (train_eval_cifar.py, train_eval_imagenet.py) on tiny data, on the CPU.

Runs go through nas.evaluation.run in-process (the scripts are two lines over it); bad input goes
through the scripts themselves, to see the one-line error and exit status 2.
"""

import hashlib
import json
import os
import re
import runpy
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import nas.evaluation.run as evaluation
from nas.core.config import parse
from nas.data.writer import ffcv_missing_reason
from nas.evaluation.config import CifarEvalConfig, ImageNetEvalConfig
from nas.evaluation.run import CIFAR, IMAGENET, make_criteria, resolve_genotype, run_evaluation
from nas.genotype import combine, genotype_to_dict, library_names, load_genotype
from tests.helpers import ROOT

LOADERS = [
    "torch",
    pytest.param("ffcv", marks=pytest.mark.skipif(bool(ffcv_missing_reason()), reason="FFCV does not import")),
]


def cifar_args(data, save, *extra):
    return [
        "--data",
        str(data),
        "--save",
        str(save),
        "--arch",
        "DARTS_V2",
        "--epochs",
        "1",
        "--init_channels",
        "4",
        "--layers",
        "3",
        "--batch_size",
        "32",
        "--train_subset",
        "64",
        "--workers",
        "0",
        "--device",
        "cpu",
        "--loader",
        "torch",
        "--no-progress",
        *extra,
    ]


def imagenet_args(data, save, *extra):
    # 16 channels: torch 2.14's oneDNN corrupts the heap in the backward pass of channels-last
    # strided 1x1 convolutions with fewer input channels at 56 px (the first FactorizedReduce).
    return [
        "--data",
        str(data),
        "--save",
        str(save),
        "--arch",
        "DARTS_V2",
        "--epochs",
        "6",
        "--init_channels",
        "16",
        "--layers",
        "3",
        "--batch_size",
        "4",
        "--workers",
        "0",
        "--device",
        "cpu",
        "--loader",
        "torch",
        "--no-progress",
        *extra,
    ]


def run(task, argv):
    cfg, given = parse(CifarEvalConfig if task is CIFAR else ImageNetEvalConfig, argv)
    return run_evaluation(cfg, given, task)


def only_run_dir(save):
    dirs = [d for d in save.iterdir() if d.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def run_script(script, argv, monkeypatch, capsys):
    """The entry script in-process: (exit status, stderr)."""
    monkeypatch.setattr(sys, "argv", [script, *map(str, argv)])
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(str(ROOT / script), run_name="__main__")
    return exc.value.code, capsys.readouterr().err


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def imagenet_root(tmp_path_factory):
    """A 3-class ImageNet-style folder pair (odd image sizes, as in the real set), plus .beton files
    when FFCV imports."""
    from PIL import Image

    root = tmp_path_factory.mktemp("imagenet")
    rng = np.random.default_rng(0)
    for split, per_class in (("train", 4), ("val", 2)):
        for c in ("n01", "n02", "n03"):
            (root / "raw" / split / c).mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, size=(40 + 3 * i, 56, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / "raw" / split / c / f"{c}_{i}.JPEG", format="JPEG")
    if not ffcv_missing_reason():
        from nas.data.writer import write_imagenet

        write_imagenet(root / "raw", root / "data", max_side=64, quality=90)
    else:
        (root / "data").mkdir()
        for split in ("train", "val"):
            (root / "data" / split).symlink_to(root / "raw" / split)
    return root / "data"


# ------------------------------------------------------------------------------ pieces
def test_two_genotype_form_takes_normal_and_reduction_cells_from_each():
    g = resolve_genotype("EVAL_BEST_SUPERNET", "DARTS_V2")
    assert g.normal == load_genotype("EVAL_BEST_SUPERNET").normal
    assert g.reduce == load_genotype("DARTS_V2").reduce
    assert resolve_genotype("PDARTS") == load_genotype("PDARTS")


def test_label_smoothing_is_for_training_only():
    train_loss, val_loss = make_criteria(0.1)
    assert train_loss.label_smoothing == 0.1 and val_loss.label_smoothing == 0.0
    logits, target = torch.tensor([[4.0, 0.0, 0.0]]), torch.tensor([0])
    assert train_loss(logits, target) > val_loss(logits, target)


def test_published_defaults():
    cifar, imagenet = CifarEvalConfig(), ImageNetEvalConfig()
    assert (
        cifar.epochs,
        cifar.batch_size,
        cifar.learning_rate,
        cifar.lr_scheduler,
        cifar.weight_decay,
        cifar.init_channels,
        cifar.layers,
        cifar.auxiliary,
        cifar.auxiliary_weight,
        cifar.cutout_length,
        cifar.drop_path_prob,
        cifar.grad_clip,
        cifar.label_smooth,
    ) == (600, 128, 0.025, "cosine", 3e-4, 36, 20, True, 0.4, 16, 0.3, 5.0, 0.0)
    assert (
        imagenet.epochs,
        imagenet.batch_size,
        imagenet.learning_rate,
        imagenet.lr_scheduler,
        imagenet.weight_decay,
        imagenet.init_channels,
        imagenet.layers,
        imagenet.auxiliary,
        imagenet.drop_path_prob,
        imagenet.grad_clip,
        imagenet.label_smooth,
    ) == (300, 128, 0.1, "linear", 3e-5, 48, 14, False, 0.0, 5.0, 0.1)


@pytest.fixture(scope="module")
def cifar10_size_root(tmp_path_factory):
    """CIFAR-10's sizes (50,000 training, 10,000 test images), blank images, in both loaders' formats."""
    from tests.fake_data import cifar10_dir

    tmp = tmp_path_factory.mktemp("cifar10-size")
    images, labels = np.zeros((50_000, 32, 32, 3), np.uint8), np.arange(50_000) % 10
    src = cifar10_dir(tmp / "src" / "cifar-10-batches-py", images, labels, images[:10_000], labels[:10_000])
    if ffcv_missing_reason():
        (tmp / "root").mkdir()
        (tmp / "root" / "cifar-10-batches-py").symlink_to(src)
    else:
        from nas.data.writer import write_cifar

        write_cifar("cifar10", src, tmp / "root", workers=1)
    return tmp / "root"


@pytest.mark.slow
@pytest.mark.parametrize("loader", LOADERS)
def test_paper_evaluation_epochs_take_391_steps_on_50000_images_at_batch_128(cifar10_size_root, loader):
    """The original's DataLoaders kept each epoch's last partial batch (80 images); the paper
    preset does too (--no-drop_last), the default drops it."""
    from nas.core.distributed import DistEnv

    def training_batches(*flags):
        argv = ["--data", str(cifar10_size_root), "--loader", loader, "--workers", "0" if loader == "torch" else "1"]
        cfg, given = parse(CifarEvalConfig, [*argv, "--init_channels", "4", "--layers", "3", *flags])
        assert cfg.batch_size == 128
        return evaluation.EvalRun(cfg, given, CIFAR, DistEnv()).data.train  # what train_epoch trains on

    paper = training_batches("--preset", "paper")
    sizes = [len(labels) for _, labels in paper]
    assert len(paper) == len(sizes) == 391 and sizes[-1] == 80 and sum(sizes) == 50_000
    assert len(training_batches()) == 390  # the default drops the 80


# ------------------------------------------------------------------------------ runs
@pytest.mark.slow
@pytest.mark.parametrize("loader", LOADERS)
def test_cifar_smoke_run_writes_checkpoints_log_and_summary(digits_root, tmp_path, loader):
    save = tmp_path / "runs"
    summary = run(
        CIFAR,
        cifar_args(digits_root, save, "--loader", loader, "--arch", "EVAL_BEST_SUPERNET", "--reduce_arch", "DARTS_V2"),
    )
    run_dir = only_run_dir(save)
    assert run_dir.name.startswith("eval-cifar-")
    for name in (
        "config.yaml",
        "genotype.json",
        "log_rank0.txt",
        "summary.json",
        "checkpoints/last.pt",
        "checkpoints/model_best.pt",
    ):
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "tb" / "rank0").glob("events.out.tfevents.*"))
    on_disk = json.loads((run_dir / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    intended = genotype_to_dict(combine(load_genotype("EVAL_BEST_SUPERNET"), load_genotype("DARTS_V2")))
    assert on_disk["genotype"] == intended
    assert {k: v for k, v in json.loads((run_dir / "genotype.json").read_text()).items() if k != "source"} == intended
    assert on_disk["status"] == "finished" and on_disk["epochs"] == 1 and on_disk["dataset"] == "cifar10"
    assert on_disk["params_m"] > 0 and on_disk["macs_m"] > 0 and on_disk["wall_time_s"] > 0
    assert 0 <= on_disk["final_top1"] <= 100 and on_disk["best_top1"] == on_disk["final_top1"]
    log = (run_dir / "log_rank0.txt").read_text()
    # a one-epoch cosine schedule trains its only (last) epoch at lr 0, as the original
    assert "epoch 1/1 lr 0 drop_path 0.000 | train loss" in log and " top5 " in log and "s\n" in log
    assert "digits (read as cifar10): 10 classes" in log and " step " not in log  # --no-progress: no step lines
    state = json.loads((run_dir / "state.json").read_text())  # what the run table reads
    assert (state["status"], state["epoch"], state["epochs"]) == ("finished", 1, 1)
    assert state["params_m"] == on_disk["params_m"] and state["best_top1"] == on_disk["best_top1"]
    epochs = [json.loads(line) for line in (run_dir / "epochs.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs] == [1] and epochs[0]["val_top1"] == on_disk["final_top1"]
    ckpt = torch.load(run_dir / "checkpoints/last.pt", weights_only=True)
    assert ckpt["epoch"] == 1 and ckpt["genotype"] == intended and ckpt["dataset"]["name"] == "cifar10"


@pytest.mark.slow
@pytest.mark.parametrize("loader", LOADERS)
def test_imagenet_smoke_run_smooths_labels_in_training_only(imagenet_root, tmp_path, loader, monkeypatch):
    criteria = {}
    real_train, real_evaluate = evaluation.train, evaluation.evaluate
    monkeypatch.setattr(
        evaluation,
        "train",
        lambda m, b, o, crit, *a, **k: criteria.setdefault("train", crit) and real_train(m, b, o, crit, *a, **k),
    )
    monkeypatch.setattr(
        evaluation,
        "evaluate",
        lambda m, b, crit, *a, **k: criteria.setdefault("val", crit) and real_evaluate(m, b, crit, *a, **k),
    )
    save = tmp_path / "runs"
    # 6 epochs is the shortest "linear" schedule; a train subset of 4 keeps it to one step each.
    summary = run(IMAGENET, imagenet_args(imagenet_root, save, "--loader", loader, "--train_subset", "4"))
    assert criteria["train"].label_smoothing == 0.1 and criteria["val"].label_smoothing == 0.0
    run_dir = only_run_dir(save)
    assert summary["dataset"] == "imagenet" and summary["epochs"] == 6
    ckpt = torch.load(run_dir / "checkpoints/last.pt", weights_only=True)
    assert ckpt["dataset"] == {"name": "imagenet", "num_classes": 3, "image_size": 224}
    # "linear" with E=6: 0.1 (E-5-e)/(E-5) for e < 1, then 0.1 (E-e)/((E-5) 5).
    assert [h["lr"] for h in ckpt["history"]] == pytest.approx([0.1, 0.1, 0.08, 0.06, 0.04, 0.02])


class Crash(Exception):
    pass


def run_until_first_checkpoint(argv, monkeypatch):
    """A CIFAR evaluation that dies right after writing its first checkpoints/last.pt, as a kill would."""
    real_save = evaluation.torch_save

    def save_then_crash(path, obj):
        real_save(path, obj)
        if path.name == "last.pt":
            raise Crash

    monkeypatch.setattr(evaluation, "torch_save", save_then_crash)
    with pytest.raises(Crash):
        run(CIFAR, argv)
    monkeypatch.setattr(evaluation, "torch_save", real_save)


@pytest.mark.slow
@pytest.mark.parametrize("loader", LOADERS)
def test_resume_after_a_crash_gives_the_uninterrupted_weights(digits_root, tmp_path, monkeypatch, loader):
    # drop-path draws random masks; both loaders draw every augmentation from the run's seed
    extra = ("--epochs", "2", "--seed", "5", "--drop_path_prob", "0.3", "--loader", loader)
    run(CIFAR, cifar_args(digits_root, tmp_path / "a", *extra))
    straight = torch.load(only_run_dir(tmp_path / "a") / "checkpoints/last.pt", weights_only=True)

    run_until_first_checkpoint(cifar_args(digits_root, tmp_path / "b", *extra), monkeypatch)
    run_dir = only_run_dir(tmp_path / "b")
    assert torch.load(run_dir / "checkpoints/last.pt", weights_only=True)["epoch"] == 1
    # Runtime flags only: everything else comes from the run.
    run(CIFAR, ["--resume", str(run_dir), "--data", str(digits_root), "--workers", "0", "--no-progress"])
    resumed = torch.load(run_dir / "checkpoints/last.pt", weights_only=True)

    assert resumed["epoch"] == straight["epoch"] == 2
    assert resumed["model"].keys() == straight["model"].keys()
    assert all(torch.equal(resumed["model"][k], straight["model"][k]) for k in straight["model"])
    assert resumed["best_top1"] == straight["best_top1"]
    from nas.report.evaluation import read_eval_data

    drawn = read_eval_data(run_dir)  # the report draws the run across its resume
    assert drawn.resumes == [1] and [e["epoch"] for e in drawn.epochs] == [1, 2]
    assert drawn.epochs[-1]["val_top1"] == resumed["history"][-1]["val_top1"]
    assert [h["drop_path_prob"] for h in resumed["history"]] == [0.0, 0.15]  # ramped: 0.3 * epoch / 2
    assert [h["lr"] for h in resumed["history"]] == pytest.approx([0.0125, 0.0])  # cosine over 2, stepped first


@pytest.mark.slow
def test_resume_with_loader_workers_gives_the_weights_of_any_uninterrupted_run(digits_root, tmp_path, monkeypatch):
    # The DataLoader must not draw from torch's global generator (the drop-path masks come from
    # it): a persistent-worker iterator draws once per process, a worker-less one every epoch.
    # An uninterrupted run with 2 workers, and a run killed after epoch 1 (0 workers) and
    # resumed with 1, give the same weights.
    extra = ("--epochs", "2", "--seed", "5", "--drop_path_prob", "0.3")
    run(CIFAR, cifar_args(digits_root, tmp_path / "a", *extra, "--workers", "2"))
    straight = torch.load(only_run_dir(tmp_path / "a") / "checkpoints/last.pt", weights_only=True)

    run_until_first_checkpoint(cifar_args(digits_root, tmp_path / "b", *extra), monkeypatch)  # --workers 0
    run_dir = only_run_dir(tmp_path / "b")
    run(CIFAR, ["--resume", str(run_dir), "--data", str(digits_root), "--workers", "1", "--no-progress"])
    resumed = torch.load(run_dir / "checkpoints/last.pt", weights_only=True)
    assert resumed["epoch"] == straight["epoch"] == 2
    assert all(torch.equal(resumed["model"][k], straight["model"][k]) for k in straight["model"])


def start_script(argv, save, signum, ready, env=None):
    """train_eval_cifar.py in a subprocess, sent `signum` once `ready(run_dir)`; (exit status, stderr, run dir)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "train_eval_cifar.py"), *map(str, argv)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 300
    while not (save.is_dir() and any(save.iterdir()) and ready(only_run_dir(save))):
        assert proc.poll() is None and time.time() < deadline, "the run ended before the moment to signal it"
        time.sleep(0.05)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=600)
    return proc.returncode, err, only_run_dir(save)


@pytest.mark.slow
def test_sigterm_and_sigusr1_stop_after_an_epoch_and_resume_gives_the_uninterrupted_weights(digits_root, tmp_path):
    loader = "torch" if ffcv_missing_reason() else "ffcv"  # the default loader where FFCV imports
    extra = ("--epochs", "4", "--seed", "5", "--drop_path_prob", "0.3", "--loader", loader)
    run(CIFAR, cifar_args(digits_root, tmp_path / "a", *extra))
    straight = torch.load(only_run_dir(tmp_path / "a") / "checkpoints/last.pt", weights_only=True)

    save = tmp_path / "b"
    code, err, run_dir = start_script(
        cifar_args(digits_root, save, *extra), save, signal.SIGTERM, lambda d: (d / "log_rank0.txt").is_file()
    )
    line = err.strip().splitlines()[-1]
    stopped = re.fullmatch(
        rf"stopped by SIGTERM after epoch ([123])/4; to continue: \S*train_eval_cifar.py "
        rf"--resume {re.escape(str(run_dir))}",
        line,
    )
    assert code == 143 and stopped, err
    assert torch.load(run_dir / "checkpoints/last.pt", weights_only=True)["epoch"] == int(stopped[1])
    assert not (run_dir / "summary.json").exists()

    # resumed as a SLURM job that asks to be requeued, stopped again by SIGUSR1 (sbatch --signal)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "scontrol.txt"}\n')
    (bin_dir / "scontrol").chmod(0o755)
    slurm = {"SLURM_JOB_ID": "4242", "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    resume = ["--resume", run_dir, "--data", digits_root, "--workers", "0", "--no-progress"]
    if int(stopped[1]) < 3:
        code, err, _ = start_script(
            [*resume, "--requeue"],
            save,
            signal.SIGUSR1,
            lambda d: "resumed after epoch" in (d / "log_rank0.txt").read_text(),
            env=slurm,
        )
        stopped, requeued = err.strip().splitlines()[-2:]
        assert code == 138 and re.fullmatch(r"stopped by SIGUSR1 after epoch [23]/4; to continue: .*", stopped), err
        assert requeued == "SLURM job 4242 requeued"
        assert (tmp_path / "scontrol.txt").read_text() == "requeue 4242\n"
    done = subprocess.run(
        [sys.executable, str(ROOT / "train_eval_cifar.py"), *map(str, resume)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr
    resumed = torch.load(run_dir / "checkpoints/last.pt", weights_only=True)
    assert resumed["epoch"] == straight["epoch"] == 4
    assert all(torch.equal(resumed["model"][k], straight["model"][k]) for k in straight["model"])


def worker_of_rank(launcher: int, rank: int) -> int:
    """The pid of torchrun's worker process of `rank` (Linux: read from /proc)."""
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            ppid = int(next(line for line in status.read_text().splitlines() if line.startswith("PPid:")).split()[1])
            environ = (status.parent / "environ").read_bytes().split(b"\0")
        except (OSError, StopIteration):
            continue
        if ppid == launcher and f"RANK={rank}".encode() in environ:
            return int(status.parent.name)
    raise AssertionError(f"no worker of rank {rank} under process {launcher}")


@pytest.mark.slow
def test_torchrun_a_signal_to_one_rank_stops_both_at_the_same_epoch(digits_root, tmp_path):
    save = tmp_path / "runs"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(ROOT / "train_eval_cifar.py"),
        *cifar_args(digits_root, save, "--epochs", "4"),
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 300
    while not list(save.glob("*/log_rank1.txt")):
        assert proc.poll() is None and time.time() < deadline, "the run ended before the moment to signal it"
        time.sleep(0.05)
    run_dir = only_run_dir(save)
    os.kill(worker_of_rank(proc.pid, 1), signal.SIGTERM)  # rank 1 alone
    _, err = proc.communicate(timeout=600)
    stopped = re.search(
        r"stopped by SIGTERM after epoch ([123])/4; to continue: \S*train_eval_cifar.py --resume "
        + re.escape(str(run_dir)),
        err,
    )  # said by rank 0, which agreed
    assert proc.returncode != 0 and stopped, err
    ckpt = torch.load(run_dir / "checkpoints/last.pt", weights_only=True)
    assert ckpt["epoch"] == int(stopped[1]) and not (run_dir / "summary.json").exists()


@pytest.mark.slow
def test_torchrun_two_processes(digits_root, tmp_path):
    import os
    import subprocess

    save = tmp_path / "runs"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(ROOT / "train_eval_cifar.py"),
        *cifar_args(digits_root, save, "--drop_path_prob", "0.2"),
    ]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=600, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = only_run_dir(save)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["world_size"] == 2 and len(summary["peak_memory_mb"]) == 2
    assert (run_dir / "log_rank1.txt").is_file()


# ------------------------------------------------------------------------------ bad input
@pytest.fixture(scope="module")
def finished_cifar_run(digits_root, tmp_path_factory):
    save = tmp_path_factory.mktemp("finished")
    run(CIFAR, cifar_args(digits_root, save))
    return only_run_dir(save)


def bad_json(tmp_path, text):
    path = tmp_path / "bad.json"
    path.write_text(text)
    return path


BAD_ARCH = {
    "unknown library name": (lambda tmp: "NOPE", "unknown genotype 'NOPE'"),
    "malformed JSON": (lambda tmp: bad_json(tmp, '{"normal": ['), "malformed JSON"),
    "op the network cannot build": (
        lambda tmp: bad_json(
            tmp,
            json.dumps(
                {**genotype_to_dict(load_genotype("DARTS_V2")), "normal": [["conv_9x9", 0]] + [["sep_conv_3x3", 1]] * 7}
            ),
        ),
        "unknown operation 'conv_9x9'",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(BAD_ARCH))
@pytest.mark.parametrize("script", ["train_eval_cifar.py", "train_eval_imagenet.py"])
def test_bad_architecture_is_one_line_exit_2_and_writes_nothing(
    case, script, digits_root, tmp_path, monkeypatch, capsys
):
    make_spec, message = BAD_ARCH[case]
    save = tmp_path / "runs"
    argv = cifar_args(digits_root, save, "--arch", make_spec(tmp_path), "--lr_scheduler", "cosine")  # 1 epoch
    code, err = run_script(script, argv, monkeypatch, capsys)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert message in err
    if case == "unknown library name":
        assert all(name in err for name in library_names())
    assert not save.exists()


@pytest.mark.slow
def test_cifar_data_of_the_wrong_resolution(tmp_path, monkeypatch, capsys):
    import pickle

    raw = tmp_path / "data" / "cifar-10-batches-py"
    raw.mkdir(parents=True)
    batch = {"data": np.zeros((20, 3 * 16 * 16), dtype=np.uint8), "labels": [0] * 20}
    for name in ("data_batch_1", "test_batch"):
        (raw / name).write_bytes(pickle.dumps(batch))
    save = tmp_path / "runs"
    code, err = run_script("train_eval_cifar.py", cifar_args(tmp_path / "data", save), monkeypatch, capsys)
    assert code == 2 and err.count("\n") == 1 and "32x32" in err
    assert not save.exists()


@pytest.mark.slow
def test_imagenet_script_on_cifar_data_is_refused(digits_root, tmp_path, monkeypatch, capsys):
    save = tmp_path / "runs"
    code, err = run_script("train_eval_imagenet.py", imagenet_args(digits_root, save), monkeypatch, capsys)
    assert code == 2 and err.count("\n") == 1 and "train" in err
    assert not save.exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra, message",
    [
        (("--arch", "PDARTS"), "another architecture"),
        (("--reduce_arch", "PDARTS"), "another architecture"),
        (("--cifar100",), "--dataset cifar100 (run has cifar10)"),
        (("--dataset", "digits"), "--dataset digits (run has cifar10)"),
        (("--epochs", "5"), "--epochs 5 (run has 1)"),
    ],
)
def test_resume_with_another_architecture_or_data_set_is_refused(
    finished_cifar_run, digits_root, extra, message, monkeypatch, capsys
):
    run_dir = finished_cifar_run
    before = {p.name: digest(p) for p in (run_dir / "checkpoints").iterdir()}
    code, err = run_script(
        "train_eval_cifar.py", ["--resume", run_dir, "--data", digits_root, *extra], monkeypatch, capsys
    )
    assert code == 2 and err.count("\n") == 1 and message in err
    assert {p.name: digest(p) for p in (run_dir / "checkpoints").iterdir()} == before


@pytest.mark.slow
def test_resume_with_the_same_genotype_spelled_differently_is_accepted(
    finished_cifar_run, digits_root, tmp_path, monkeypatch, capsys
):
    # A finished run refuses to resume for that reason, after the architecture check passed.
    run_dir = finished_cifar_run
    spec = ROOT / "nas" / "genotype" / "library" / "DARTS_V2.json"
    code, err = run_script(
        "train_eval_cifar.py", ["--resume", run_dir, "--data", digits_root, "--arch", spec], monkeypatch, capsys
    )
    assert code == 2 and "already finished its 1 epochs" in err


@pytest.mark.slow
def test_resume_of_imagenet_data_with_other_classes_is_refused(imagenet_root, tmp_path, monkeypatch, capsys):
    save = tmp_path / "runs"
    run(
        IMAGENET, imagenet_args(imagenet_root, save, "--train_subset", "4", "--epochs", "2", "--lr_scheduler", "cosine")
    )
    run_dir = only_run_dir(save)
    ckpt = torch.load(run_dir / "checkpoints/last.pt", weights_only=True)
    ckpt["epoch"] = 1  # as if stopped after the first epoch
    torch.save(ckpt, run_dir / "checkpoints/last.pt")
    before = digest(run_dir / "checkpoints/last.pt")
    other = tmp_path / "other"
    for split in ("train", "val"):
        for c in ("n01", "n02"):  # two classes instead of three
            (other / split / c).mkdir(parents=True)
            for f in sorted((imagenet_root / split / c).iterdir())[:2]:
                (other / split / c / f.name).symlink_to(f.resolve())
    code, err = run_script(
        "train_eval_imagenet.py",
        ["--resume", run_dir, "--data", other, "--loader", "torch", "--workers", "0", "--device", "cpu"],
        monkeypatch,
        capsys,
    )
    assert code == 2 and err.count("\n") == 1 and "trained on imagenet (3 classes" in err and "2 classes" in err
    assert digest(run_dir / "checkpoints/last.pt") == before


@pytest.mark.slow
def test_resume_across_scripts_or_of_a_non_run_is_refused(
    finished_cifar_run, imagenet_root, tmp_path, monkeypatch, capsys
):
    run_dir = finished_cifar_run
    code, err = run_script(
        "train_eval_imagenet.py", ["--resume", run_dir, "--data", imagenet_root], monkeypatch, capsys
    )
    assert code == 2 and "it is a cifar evaluation run, not imagenet" in err
    code, err = run_script("train_eval_cifar.py", ["--resume", tmp_path], monkeypatch, capsys)
    assert code == 2 and "no checkpoint" in err
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    code, err = run_script("train_eval_cifar.py", ["--resume", tmp_path / "junk.pt"], monkeypatch, capsys)
    assert code == 2 and "not a readable checkpoint" in err


def _epochs_logged(n):
    def ready(run_dir):
        path = run_dir / "epochs.jsonl"
        return path.is_file() and sum('"epoch"' in line for line in path.read_text().splitlines()) >= n

    return ready


@pytest.mark.slow
def test_sigkill_in_the_first_epoch_and_after_one_then_resume_gives_the_uninterrupted_weights(digits_root, tmp_path):
    """SIGKILL before the first checkpoint and again right after an epoch is logged (its
    checkpoint written or not): each --resume takes over the killed process's lock and the run
    ends with the weights of an uninterrupted one, no lock or temporary file left."""
    extra = ("--epochs", "3", "--seed", "5", "--drop_path_prob", "0.3")
    run(CIFAR, cifar_args(digits_root, tmp_path / "a", *extra))
    straight = torch.load(only_run_dir(tmp_path / "a") / "checkpoints/last.pt", weights_only=True)

    save = tmp_path / "b"
    code, _, run_dir = start_script(
        cifar_args(digits_root, save, *extra), save, signal.SIGKILL, lambda d: (d / "state.json").is_file()
    )
    assert code == -signal.SIGKILL and (run_dir / "run.lock").is_file()
    resume = ["--resume", run_dir, "--data", digits_root, "--workers", "0", "--no-progress"]
    code, _, _ = start_script(resume, save, signal.SIGKILL, _epochs_logged(1))
    assert code == -signal.SIGKILL
    run(CIFAR, list(map(str, resume)))
    resumed = torch.load(run_dir / "checkpoints/last.pt", weights_only=True)
    assert resumed["epoch"] == straight["epoch"] == 3
    assert all(torch.equal(resumed["model"][k], straight["model"][k]) for k in straight["model"])
    assert resumed["best_top1"] == straight["best_top1"]
    assert not (run_dir / "run.lock").exists() and not list(run_dir.rglob(".*.tmp"))


def test_resume_of_an_evaluation_that_is_running_is_refused(finished_cifar_run, tmp_path, monkeypatch, capsys):
    import shutil
    import socket

    run_dir = tmp_path / "run"
    shutil.copytree(finished_cifar_run, run_dir)
    ckpt = torch.load(run_dir / "checkpoints/last.pt", weights_only=True)
    torch.save({**ckpt, "epoch": 0}, run_dir / "checkpoints/last.pt")  # as if killed mid-run
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run_dir / "run.lock").write_text(json.dumps({"host": socket.gethostname(), "pid": live.pid, "started": "x"}))
        code, err = run_script("train_eval_cifar.py", ["--resume", run_dir], monkeypatch, capsys)
    finally:
        live.kill()
        live.wait()
    assert code == 2 and err.count("\n") == 1, err
    assert f"the run is already running (pid {live.pid} on {socket.gethostname()}" in err


def test_resume_of_a_search_run_or_with_another_arch_names_both(finished_cifar_run, tmp_path, monkeypatch, capsys):

    search = tmp_path / "search-x"
    search.mkdir()
    (search / "config.yaml").write_text("method: evolutionary\nseed: 1\n")
    code, err = run_script("train_eval_cifar.py", ["--resume", search], monkeypatch, capsys)
    assert (
        code == 2
        and f"it is a search run, not an evaluation: evaluate the genotype it found with --arch {search}" in err
    )
    code, err = run_script(
        "train_eval_cifar.py", ["--resume", finished_cifar_run, "--arch", "PDARTS"], monkeypatch, capsys
    )
    assert code == 2 and "--arch PDARTS names another architecture than the run trains (run has --arch DARTS_V2)" in err
