"""Bad input to the evaluation scripts is one line `error: ...`, exit status 2, and no run
directory; a run stopped in its first epoch starts again on --resume."""

import json
import runpy
import sys

import pytest

from tests.helpers import BAD_NOTES, ROOT, plant_checkpoint

SCRIPTS = ["train_eval_cifar.py", "train_eval_imagenet.py"]


def run_script(script, argv, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [script, *map(str, argv)])
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(str(ROOT / script), run_name="__main__")
    return exc.value.code, capsys.readouterr().err


def small(data, save, *extra):
    return [
        "--data",
        data,
        "--save",
        save,
        "--arch",
        "DARTS_V2",
        "--epochs",
        "1",
        "--init_channels",
        "4",
        "--layers",
        "3",
        "--batch_size",
        "8",
        "--train_subset",
        "16",
        "--workers",
        "0",
        "--device",
        "cpu",
        "--loader",
        "torch",
        "--no-progress",
        "--lr_scheduler",
        "cosine",  # ImageNet's linear schedule needs more than 5 epochs
        *extra,
    ]


BAD_VALUES = [
    (["--learning_rate", "inf"], "--learning_rate inf: expected a finite number more than 0"),
    (["--weight_decay", "inf"], "--weight_decay inf: expected a finite number, 0 or more"),
    (["--grad_clip", "inf"], "--grad_clip inf: expected a finite number, 0 or more"),
    (["--init_channels", "1"], "--init_channels 1 with --channels_last: expected --no-channels_last"),
    (["--init_channels", "0"], "--init_channels 0: expected 1 or more"),
    (["--init_channels", "-2"], "--init_channels -2: expected 1 or more"),
    (["--learning_rate", "-1"], "--learning_rate -1.0: expected more than 0"),
    (["--learning_rate", "nan"], "--learning_rate nan: expected more than 0"),
    (["--label_smooth", "2"], "--label_smooth 2.0: expected a number from 0 to 1"),
    (["--drop_path_prob", "-0.1"], "--drop_path_prob -0.1: expected a number from 0 to 1"),
    (["--layers", "1"], "--layers 1: expected 3 or more"),
    (["--epochs", "0"], "--epochs 0: expected 1 or more"),
    (["--batch_size", "0"], "--batch_size 0: expected 1 or more"),
    (["--seed", "99999999999999999999"], "--seed 99999999999999999999: expected a number from 0 to 2147483647"),
    (["--seed", "-1"], "--seed -1: expected a number from 0 to 2147483647"),
    (["--arch", "nonsense"], "unknown genotype 'nonsense'"),
]


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("note", BAD_NOTES, ids=repr)
def test_a_note_that_is_not_one_name_is_refused_before_anything_is_made(
    script, note, digits_root, tmp_path, monkeypatch, capsys
):
    save = tmp_path / "deep" / "er" / "runs"
    code, err = run_script(script, small(digits_root, save, "--note", note), monkeypatch, capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert f"error: --note {note!r}: expected a name of 1 to 200 bytes without path separators" in err
    assert list(tmp_path.rglob("*")) == []


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("flags, message", BAD_VALUES, ids=[" ".join(f) for f, _ in BAD_VALUES])
def test_bad_value_is_one_line_and_leaves_no_run_directory(
    script, flags, message, digits_root, tmp_path, monkeypatch, capsys
):
    save = tmp_path / "runs"
    code, err = run_script(script, small(digits_root, save, *flags), monkeypatch, capsys)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not save.exists() or not any(save.iterdir())


def test_edge_values_of_one_script_are_refused_before_anything_is_made(digits_root, tmp_path, monkeypatch, capsys):
    """A batch of one image per process through the auxiliary head (BatchNorm over one value
    per channel); ImageNet's linear schedule over fewer epochs than its own tail."""
    save = tmp_path / "runs"
    argv = small(digits_root, save, "--batch_size", "1")
    code, err = run_script("train_eval_cifar.py", argv, monkeypatch, capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert "--batch_size 1 with --auxiliary on 1 process(es): expected at least 2 images per process" in err
    argv = small(digits_root, save, "--lr_scheduler", "linear", "--epochs", "3")
    code, err = run_script("train_eval_imagenet.py", argv, monkeypatch, capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert "--epochs 3 with --lr_scheduler linear: expected more than 5" in err
    assert "a shorter smoke run: --lr_scheduler cosine" in err
    assert not save.exists()


@pytest.mark.slow
def test_a_batch_of_one_without_the_auxiliary_head_and_one_channel_cells_run(digits_root, tmp_path, monkeypatch):
    from nas.core.config import parse
    from nas.evaluation.config import CifarEvalConfig
    from nas.evaluation.run import CIFAR, run_evaluation

    for extra in (["--batch_size", "1", "--no-auxiliary"], ["--init_channels", "1", "--no-channels_last"]):
        cfg, given = parse(CifarEvalConfig, [str(a) for a in small(digits_root, tmp_path / "runs", *extra)])
        summary = run_evaluation(cfg, given, CIFAR)
        assert summary["epochs"] == 1 and summary["final_top1"] >= 0


@pytest.mark.parametrize("script", SCRIPTS)
def test_requeue_outside_a_slurm_job_is_refused(script, digits_root, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    save = tmp_path / "runs"
    code, err = run_script(script, small(digits_root, save, "--requeue"), monkeypatch, capsys)
    assert code == 2 and err.count("\n") == 1 and "--requeue: SLURM_JOB_ID is not set" in err, err
    assert not save.exists()


def test_unwritable_save_directory(digits_root, monkeypatch, capsys):
    code, err = run_script("train_eval_cifar.py", small(digits_root, "/proc/no/such/place"), monkeypatch, capsys)
    assert code == 2 and err.count("\n") == 1 and "cannot create run directory /proc/no/such/place" in err, err


@pytest.mark.parametrize("content", [b"\x00\x01: [unclosed", b"- 1\n- 2\n"])
def test_resume_of_a_run_with_a_damaged_config_and_no_checkpoint(content, digits_root, tmp_path, monkeypatch, capsys):
    (tmp_path / "config.yaml").write_bytes(content)
    code, err = run_script("train_eval_cifar.py", ["--resume", tmp_path, "--data", digits_root], monkeypatch, capsys)
    assert code == 2 and err.count("\n") == 1 and "config.yaml" in err, err


def test_a_run_stopped_in_its_first_epoch_starts_again(digits_root, tmp_path, monkeypatch, capsys):
    import nas.evaluation.run as evaluation

    class Killed(Exception):
        pass

    def killed_in_first_epoch(*args, **kwargs):
        raise Killed

    real_train = evaluation.train
    monkeypatch.setattr(evaluation, "train", killed_in_first_epoch)
    monkeypatch.setattr(sys, "argv", ["train_eval_cifar.py", *map(str, small(digits_root, tmp_path, "--seed", "3"))])
    with pytest.raises(Killed):
        runpy.run_path(str(ROOT / "train_eval_cifar.py"), run_name="__main__")
    run_dir = next(tmp_path.iterdir())
    assert not (run_dir / "checkpoints" / "last.pt").exists()
    (run_dir / ".config.yaml.x.tmp").write_text("half written")
    monkeypatch.setattr(evaluation, "train", real_train)
    monkeypatch.setattr(
        sys, "argv", ["train_eval_cifar.py", "--resume", str(run_dir), "--data", str(digits_root), "--no-progress"]
    )
    runpy.run_path(str(ROOT / "train_eval_cifar.py"), run_name="__main__")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["epochs"] == 1 and summary["seed"] == 3 and summary["arch"] == "DARTS_V2"
    assert "started again: it stopped in its first epoch" in (run_dir / "log_rank0.txt").read_text()
    assert not list(run_dir.rglob("*.tmp"))


@pytest.mark.parametrize(
    "script, checkpoint", [("train_eval_cifar.py", "last.pt"), ("train_eval_imagenet.py", "model_best.pt")]
)
def test_resume_of_a_planted_checkpoint_runs_no_code(script, checkpoint, digits_root, tmp_path, monkeypatch, capsys):
    path = tmp_path / "eval-try-20250101-000000" / "checkpoints" / checkpoint
    marker = tmp_path / "pwned"
    plant_checkpoint(path, marker, eval_task="cifar", epoch=1, optimizer={})
    code, err = run_script(
        script,
        ["--resume", path if checkpoint != "last.pt" else path.parent.parent, "--data", digits_root],
        monkeypatch,
        capsys,
    )
    assert code == 2 and err.count("\n") == 1, err
    assert f"{path} holds a posix.system object, not only tensors and plain data: refused unread" in err
    assert not marker.exists()


def test_an_epoch_with_a_nan_validation_loss_is_never_the_best(digits_root, tmp_path, monkeypatch):
    import torch

    import nas.evaluation.run as evaluation

    real_evaluate, calls = evaluation.evaluate, []

    def nan_in_first_epoch(*args, **kwargs):
        res = real_evaluate(*args, **kwargs)
        calls.append(1)
        return {**res, "loss": float("nan"), "top1": 99.0} if len(calls) == 1 else {**res, "top1": 1.0}

    monkeypatch.setattr(evaluation, "evaluate", nan_in_first_epoch)
    monkeypatch.setattr(sys, "argv", ["train_eval_cifar.py", *map(str, small(digits_root, tmp_path, "--epochs", "2"))])
    runpy.run_path(str(ROOT / "train_eval_cifar.py"), run_name="__main__")
    run_dir = next(tmp_path.iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["best_epoch"] == 2 and summary["best_top1"] == 1.0
    assert torch.load(run_dir / "checkpoints" / "model_best.pt", weights_only=True)["epoch"] == 2


# ------------------------------------------------------------------------------ faults of the system
def test_a_full_disk_stops_the_evaluation_with_one_line(digits_root, tmp_path, monkeypatch, capsys):

    from tests.helpers import fill_disk_after

    fill_disk_after(monkeypatch, writes=2)  # config.yaml and genotype.json fit; the first state.json does not
    code, err = run_script("train_eval_cifar.py", small(digits_root, tmp_path), monkeypatch, capsys)
    run_dir = next(tmp_path.iterdir())
    assert code == 1, err
    warning, error = err.splitlines()
    assert (
        warning
        == f"warning: cannot write {run_dir / 'log_rank0.txt'}: No space left on device; it gets no more log lines"
    )
    assert error == f"error: {run_dir / 'state.json'}: No space left on device"
    assert json.loads((run_dir / "genotype.json").read_text())["normal_concat"] == [2, 3, 4, 5]
    assert not list(run_dir.rglob("*.tmp")) and not (run_dir / "state.json").exists()


def test_resume_of_a_read_only_run_directory_is_one_line(digits_root, tmp_path, monkeypatch, capsys):
    import errno
    import os
    import tempfile

    run_dir = tmp_path / "eval-try-20250101-000000"
    run_dir.mkdir()
    from nas.core.config import parse, to_dict
    from nas.core.files import write_yaml
    from nas.evaluation.config import CifarEvalConfig

    cfg, _ = parse(CifarEvalConfig, [str(a) for a in small(digits_root, tmp_path)])
    write_yaml(run_dir / "config.yaml", {"eval_task": "cifar", **to_dict(cfg)})
    real_mkstemp = tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):  # root writes anywhere: the file system refuses instead
        if dir is not None and str(dir).startswith(str(run_dir)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dir))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    code, err = run_script("train_eval_cifar.py", ["--resume", run_dir, "--data", digits_root], monkeypatch, capsys)
    assert code == 2 and err == f"error: --resume {run_dir}: cannot write in {run_dir}: Read-only file system\n", err
    assert [p.name for p in run_dir.iterdir()] == ["config.yaml"]
