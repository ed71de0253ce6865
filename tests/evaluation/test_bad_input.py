"""Bad input to the evaluation scripts is one line `error: ...`, exit status 2, and no run
directory; a run stopped in its first epoch starts again on --resume."""
import json
import runpy
import sys

import pytest

from tests.helpers import ROOT

SCRIPTS = ["train_eval_cifar.py", "train_eval_imagenet.py"]


def run_script(script, argv, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [script, *map(str, argv)])
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(str(ROOT / script), run_name="__main__")
    return exc.value.code, capsys.readouterr().err


def small(data, save, *extra):
    return ["--data", data, "--save", save, "--arch", "DARTS_V2", "--epochs", "1", "--init_channels", "4",
            "--layers", "3", "--batch_size", "8", "--train_subset", "16", "--workers", "0", "--device", "cpu",
            "--loader", "torch", "--no-progress", *extra]


BAD_VALUES = [
    (["--init_channels", "0"], "--init_channels 0: expected 1 or more"),
    (["--init_channels", "-2"], "--init_channels -2: expected 1 or more"),
    (["--learning_rate", "-1"], "--learning_rate -1.0: expected more than 0"),
    (["--learning_rate", "nan"], "--learning_rate nan: expected more than 0"),
    (["--label_smooth", "2"], "--label_smooth 2.0: expected a number from 0 to 1"),
    (["--drop_path_prob", "-0.1"], "--drop_path_prob -0.1: expected a number from 0 to 1"),
    (["--layers", "1"], "--layers 1: expected 3 or more"),
    (["--epochs", "0"], "--epochs 0: expected 1 or more"),
    (["--batch_size", "0"], "--batch_size 0: expected 1 or more"),
    (["--arch", "nonsense"], "unknown genotype 'nonsense'"),
]


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("flags, message", BAD_VALUES, ids=[" ".join(f) for f, _ in BAD_VALUES])
def test_bad_value_is_one_line_and_leaves_no_run_directory(script, flags, message, digits_root, tmp_path,
                                                            monkeypatch, capsys):
    save = tmp_path / "runs"
    code, err = run_script(script, small(digits_root, save, *flags), monkeypatch, capsys)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not save.exists() or not any(save.iterdir())


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
    monkeypatch.setattr(sys, "argv", ["train_eval_cifar.py", "--resume", str(run_dir), "--data", str(digits_root),
                                      "--no-progress"])
    runpy.run_path(str(ROOT / "train_eval_cifar.py"), run_name="__main__")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["epochs"] == 1 and summary["seed"] == 3 and summary["arch"] == "DARTS_V2"
    assert "started again: it stopped in its first epoch" in (run_dir / "log_rank0.txt").read_text()
    assert not list(run_dir.rglob("*.tmp"))
