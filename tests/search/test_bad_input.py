"""Every class of bad input to the search scripts is one line `error: ...`, exit status 2, and
leaves no run directory; damaged run directories are refused on --resume the same way."""

import os
import runpy
import sys

import pytest
import torch

from tests.helpers import BAD_NOTES, ROOT, plant_checkpoint, tiny_args

SCRIPTS = ["search_evolutionary.py", "search_supernet.py"]


def run_script(script, argv, monkeypatch, capsys):
    """The entry script in-process, as a user runs it: (exit status, stderr)."""
    monkeypatch.setattr(sys, "argv", [script, *map(str, argv)])
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(str(ROOT / script), run_name="__main__")
    return exc.value.code, capsys.readouterr().err


def assert_refused(code, err, fragment):
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and fragment in err, err


BAD_VALUES = [  # (flags, what the error says): zero, negative, NaN, out of range, wrong type, wrong length
    (["--init_channels", "0"], "--init_channels 0: expected 1 or more"),
    (["--init_channels", "-4"], "--init_channels -4: expected 1 or more"),
    (["--learning_rate", "-1"], "--learning_rate -1.0: expected more than 0"),
    (["--learning_rate", "nan"], "--learning_rate nan: expected more than 0"),
    (["--momentum", "1.5"], "--momentum 1.5: expected a number from 0 to 1"),
    (["--stage_epochs", "0"], "--stage_epochs 0: expected 1 or more"),
    (["--stage_epochs", "-1"], "--stage_epochs -1: expected 1 or more"),
    (["--layers", "0"], "--layers 0: expected 3 or more"),
    (["--layers", "1"], "--layers 1: expected 3 or more"),
    (["--finetune_steps", "-1"], "--finetune_steps -1: expected 0 or more"),
    (["--finetune_extra", "5"], "--finetune_extra 5: expected 3 values"),
    (["--finetune_extra", "1", "2", "3", "4"], "--finetune_extra 1 2 3 4: expected 3 values"),
    (["--finetune_extra", "1", "-2", "3"], "--finetune_extra 1 -2 3: expected 0 or more"),
    (["--val_size", "1500"], "val_size 1500 must be smaller than the 1500 training images"),  # the data's own size
    (["--batch_size", "0"], "--batch_size 0: expected 1 or more"),
    (["--workers", "-1"], "--workers -1: expected 0 or more"),
    (["--seed", "99999999999999999999"], "--seed 99999999999999999999: expected a number from 0 to 2147483647"),
    (["--seed", "-1"], "--seed -1: expected a number from 0 to 2147483647"),
    (["--save", "/proc/no/such/place"], "cannot create run directory /proc/no/such/place"),
    (["--learning_rate", "inf"], "--learning_rate inf: expected a finite number more than 0"),
    (["--learning_rate_min", "inf"], "--learning_rate_min inf: expected a finite number, 0 or more"),
    (["--weight_decay", "inf"], "--weight_decay inf: expected a finite number, 0 or more"),
    (["--split_seed", "99999999999"], "--split_seed 99999999999: expected a number from 0 to 2147483647"),
    (["--init_channels", "1"], "--init_channels 1 with --channels_last: expected --no-channels_last"),
]


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("note", BAD_NOTES, ids=repr)
def test_a_note_that_is_not_one_name_is_refused_before_anything_is_made(
    script, note, digits_root, tmp_path, monkeypatch, capsys
):
    save = tmp_path / "deep" / "er" / "runs"
    code, err = run_script(script, tiny_args(digits_root, save, "--note", note), monkeypatch, capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert f"error: --note {note!r}: expected a name of 1 to 200 bytes without path separators" in err
    assert list(tmp_path.rglob("*")) == []


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("flags, message", BAD_VALUES, ids=[" ".join(f) for f, _ in BAD_VALUES])
def test_bad_value_is_one_line_and_leaves_no_run_directory(
    script, flags, message, digits_root, tmp_path, monkeypatch, capsys
):
    save = tmp_path / "runs"
    code, err = run_script(script, tiny_args(digits_root, save, *flags), monkeypatch, capsys)
    assert_refused(code, err, message)
    assert not save.exists() or not any(save.iterdir())


@pytest.mark.parametrize("script", SCRIPTS)
def test_requeue_outside_a_slurm_job_is_refused(script, digits_root, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    save = tmp_path / "runs"
    code, err = run_script(script, tiny_args(digits_root, save, "--requeue"), monkeypatch, capsys)
    assert_refused(code, err, "--requeue: SLURM_JOB_ID is not set")
    assert not save.exists() or not any(save.iterdir())


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--op_cap", "9"], "--op_cap 9: expected at most the 7 operations of the search space (8 with --extra_ops)"),
        (["--op_cap", "8"], "--op_cap 8: expected at most the 7 operations"),
        (["--op_cap", "9", "--extra_ops"], "--op_cap 9: expected at most the 8 operations"),
        (["--npop", "0"], "--npop 0: expected 1 or more"),
        (
            ["--phase1_procs", "3"],
            "--phase1_procs 3: expected at most the 2 population model(s) of each process (--npop 2 over 1)",
        ),
        (["--phase1_procs", "-1"], "--phase1_procs -1: expected 0 or more"),
    ],
)
def test_evolutionary_flags_are_refused_before_a_run_directory(
    flags, message, digits_root, tmp_path, monkeypatch, capsys
):
    save = tmp_path / "runs"
    code, err = run_script("search_evolutionary.py", tiny_args(digits_root, save, *flags), monkeypatch, capsys)
    assert_refused(code, err, message)
    assert not save.exists()


def test_wrong_type_in_a_config_file(digits_root, tmp_path, monkeypatch, capsys):
    (tmp_path / "c.yaml").write_text("layers: three\n")
    code, err = run_script(
        "search_supernet.py",
        tiny_args(digits_root, tmp_path / "runs", "--config", tmp_path / "c.yaml"),
        monkeypatch,
        capsys,
    )
    assert_refused(code, err, "config key 'layers' = 'three' has type str: expected int")


# ------------------------------------------------------------------------------ damaged run directories
def unfinished_run(tmp_path, method="evolutionary"):
    """A run directory as a search leaves it when killed after its start (config and state only)."""
    run_dir = tmp_path / "search-try-20250101-000000"
    run_dir.mkdir()
    from nas.core.config import parse, to_dict
    from nas.core.files import write_json, write_yaml
    from nas.search.config import EvolutionaryConfig, SupernetConfig

    cfg, _ = parse(
        EvolutionaryConfig if method == "evolutionary" else SupernetConfig,
        ["--preset", "tiny", "--fast", "--loader", "torch"],
    )
    write_yaml(run_dir / "config.yaml", {"method": method, **to_dict(cfg)})
    write_json(run_dir / "state.json", {"status": "running"})
    return run_dir


def damage_checkpoint_truncated(run_dir):
    buffer = __import__("io").BytesIO()
    torch.save({"done": 3, "model": {"w": torch.zeros(1000)}}, buffer)
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "last.pt").write_bytes(buffer.getvalue()[:300])


def damage_checkpoint_garbage(run_dir):
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "last.pt").write_bytes(b"\x00garbage" * 50)


def damage_checkpoint_foreign(run_dir):
    (run_dir / "checkpoints").mkdir()
    torch.save({"epoch": 3}, run_dir / "checkpoints" / "last.pt")


def damage_config_garbage(run_dir):
    (run_dir / "config.yaml").write_bytes(b"\x00\x01: [unclosed")


def damage_config_list(run_dir):
    (run_dir / "config.yaml").write_text("- 1\n- 2\n")


def damage_valuation(run_dir):
    (run_dir / "valuation").mkdir()
    (run_dir / "valuation" / "model0.json").write_text('{"matrix": [[0.1, 0.2')


def damage_valuation_shape(run_dir):
    (run_dir / "valuation").mkdir()
    (run_dir / "valuation" / "model0.json").write_text(
        '{"matrix": [], "steps": 0, "seconds": 0, "initial_switches": []}'
    )


CONFIG_DAMAGE = [
    (damage_config_garbage, "config.yaml is unreadable"),
    (damage_config_list, "config.yaml holds a list, not a configuration mapping"),
]
# the evolutionary search reads its valuation records first; the supernet search its checkpoint
DAMAGE = CONFIG_DAMAGE + [
    (damage_valuation, "model0.json is unreadable (JSONDecodeError): delete it to redo that model's valuation"),
    (damage_valuation_shape, "model0.json is not a valuation record"),
]
SUPERNET_DAMAGE = CONFIG_DAMAGE + [
    (damage_checkpoint_truncated, "last.pt is not a readable checkpoint"),
    (damage_checkpoint_garbage, "last.pt is not a readable checkpoint"),
    (damage_checkpoint_foreign, "last.pt is not a search checkpoint"),
]


@pytest.mark.parametrize("damage, message", DAMAGE, ids=[d.__name__ for d, _ in DAMAGE])
def test_resume_of_a_damaged_run_is_one_line(damage, message, digits_root, tmp_path, monkeypatch, capsys):
    run_dir = unfinished_run(tmp_path)
    damage(run_dir)
    before = sorted(p.relative_to(run_dir) for p in run_dir.rglob("*"))
    code, err = run_script(
        "search_evolutionary.py",
        ["--resume", run_dir, "--train_path", digits_root, "--loader", "torch", "--no-progress"],
        monkeypatch,
        capsys,
    )
    assert_refused(code, err, message)
    after = sorted(p.relative_to(run_dir) for p in run_dir.rglob("*") if not p.name.startswith("log_rank"))
    assert [p for p in after if p not in before and p.parts[0] != "tb"] == []
    assert [p for p in before if p not in after] == []


@pytest.mark.parametrize("damage, message", SUPERNET_DAMAGE, ids=[d.__name__ for d, _ in SUPERNET_DAMAGE])
def test_supernet_resume_of_a_damaged_run_is_one_line(damage, message, digits_root, tmp_path, monkeypatch, capsys):
    run_dir = unfinished_run(tmp_path, "supernet")
    damage(run_dir)
    code, err = run_script(
        "search_supernet.py",
        ["--resume", run_dir, "--train_path", digits_root, "--loader", "torch", "--no-progress"],
        monkeypatch,
        capsys,
    )
    assert_refused(code, err, message)


@pytest.mark.parametrize(
    "script, method", [("search_evolutionary.py", "evolutionary"), ("search_supernet.py", "supernet")]
)
def test_resume_of_a_planted_checkpoint_runs_no_code(script, method, digits_root, tmp_path, monkeypatch, capsys):
    run_dir = unfinished_run(tmp_path, method)
    marker = tmp_path / "pwned"
    plant_checkpoint(
        run_dir / "checkpoints" / "last.pt",
        marker,
        done=0,
        switches=[],
        model={},
        optimizer={},
        history=[],
        steps_phases2_4=[0],
        time_phases2_4=0.0,
    )
    code, err = run_script(
        script,
        ["--resume", run_dir, "--train_path", digits_root, "--loader", "torch", "--no-progress"],
        monkeypatch,
        capsys,
    )
    assert_refused(code, err, "last.pt holds a posix.system object, not only tensors and plain data: refused unread")
    assert not marker.exists()


# ------------------------------------------------------------------------------ faults of the system
def test_a_full_disk_stops_the_search_with_one_line_and_leaves_valid_json(digits_root, tmp_path, monkeypatch, capsys):
    import json

    from tests.helpers import fill_disk_after

    save = tmp_path / "runs"
    fill_disk_after(monkeypatch, writes=3)  # config.yaml, data.json and state.json fit; phase 1's first record does not
    code, err = run_script(
        "search_evolutionary.py",
        tiny_args(digits_root, save, "--npop", "1", "--phase1_procs", "1"),
        monkeypatch,
        capsys,
    )
    run_dir = next(save.iterdir())
    assert code == 1, err
    assert err.splitlines() == [
        f"warning: cannot write {run_dir / 'log_rank0.txt'}: No space left on device; it gets no more log lines",
        f"error: {run_dir / 'valuation' / 'model0.json'}: No space left on device",
    ], err
    for path in run_dir.rglob("*.json"):
        json.loads(path.read_text())  # every JSON file whole: the old version or none
    assert json.loads((run_dir / "state.json").read_text())["status"] == "running"
    assert not list(run_dir.rglob("*.tmp"))


@pytest.mark.parametrize(
    "script, method", [("search_evolutionary.py", "evolutionary"), ("search_supernet.py", "supernet")]
)
def test_resume_of_a_read_only_run_directory_is_one_line(script, method, digits_root, tmp_path, monkeypatch, capsys):
    import errno
    import tempfile

    run_dir = unfinished_run(tmp_path, method)
    real_mkstemp = tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):  # root writes anywhere: the file system refuses instead
        if dir is not None and str(dir).startswith(str(run_dir)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dir))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    code, err = run_script(
        script,
        ["--resume", run_dir, "--train_path", digits_root, "--loader", "torch", "--no-progress"],
        monkeypatch,
        capsys,
    )
    assert_refused(code, err, f"--resume {run_dir}: cannot write in {run_dir}: Read-only file system")
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.yaml", "state.json"]


@pytest.mark.parametrize("method, script", [("evolutionary", SCRIPTS[0]), ("supernet", SCRIPTS[1])])
def test_resume_of_a_run_that_is_running_is_refused_and_touches_nothing(
    method, script, digits_root, tmp_path, monkeypatch, capsys
):
    """A second --resume while the first still runs: refused by the first one's lock before a
    file of the run is touched (its half-written temporaries included)."""
    import json
    import socket
    import subprocess

    run_dir = unfinished_run(tmp_path, method)
    (run_dir / ".state.json.abc.tmp").write_text("{")  # the running process's write in progress
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run_dir / "run.lock").write_text(json.dumps({"host": socket.gethostname(), "pid": live.pid, "started": "x"}))
        before = sorted(p.relative_to(run_dir) for p in run_dir.rglob("*"))
        code, err = run_script(
            script, ["--resume", run_dir, "--train_path", digits_root, "--no-progress"], monkeypatch, capsys
        )
    finally:
        live.kill()
        live.wait()
    assert_refused(code, err, f"the run is already running (pid {live.pid} on {socket.gethostname()}")
    assert sorted(p.relative_to(run_dir) for p in run_dir.rglob("*")) == before


RESUME_CONFLICTS = [  # (script, flags, what the one line says): the flag, the value given, the run's
    (SCRIPTS[0], ["--seed", "5"], "--seed 5 (run has 1)"),
    (SCRIPTS[0], ["--npop", "4"], "--npop 4 (run has 2)"),
    (SCRIPTS[0], ["--layers", "4"], "--layers 4 (run has 3)"),
    (SCRIPTS[0], ["--finetune_extra", "1", "2", "3"], "--finetune_extra 1 2 3 (run has 0 2 3)"),
    (SCRIPTS[0], ["--preset", "paper"], "from --preset paper (run has"),
    (SCRIPTS[1], [], "it is a run of the evolutionary search, not of the supernet search: resume it with search_evo"),
]


@pytest.mark.parametrize(
    "script, flags, message", RESUME_CONFLICTS, ids=[" ".join(c[1]) or c[0] for c in RESUME_CONFLICTS]
)
def test_resume_with_a_conflicting_flag_names_it_and_both_values(
    script, flags, message, digits_root, tmp_path, monkeypatch, capsys
):
    run_dir = unfinished_run(tmp_path)
    before = sorted(p.relative_to(run_dir) for p in run_dir.rglob("*"))
    code, err = run_script(script, ["--resume", run_dir, "--train_path", digits_root, *flags], monkeypatch, capsys)
    assert_refused(code, err, message)
    if flags:  # and says which options may change
        assert "only options that say where or how it runs may change: " in err and "workers" in err
    assert sorted(p.relative_to(run_dir) for p in run_dir.rglob("*")) == before


def test_resume_of_an_evaluation_run_by_a_search_is_refused(tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "eval-x"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("eval_task: cifar\nepochs: 3\n")
    code, err = run_script(SCRIPTS[0], ["--resume", run_dir], monkeypatch, capsys)
    assert_refused(code, err, "it is a cifar evaluation run, not a search: resume it with train_eval_cifar.py")


def test_resume_on_another_data_set_is_refused(digits_root, tmp_path, monkeypatch, capsys):
    """--train_path may change on resume (the data moved), the data set may not."""
    import json

    run_dir = unfinished_run(tmp_path)
    (run_dir / "data.json").write_text(json.dumps({"label": "cifar10", "classes": 10, "image_size": 32}))
    code, err = run_script(
        SCRIPTS[0], ["--resume", run_dir, "--train_path", digits_root, "--loader", "torch"], monkeypatch, capsys
    )
    assert_refused(
        code, err, f"--train_path {digits_root} holds digits (10 classes, 32 px), but the run searched cifar10 (10"
    )


def test_resume_of_a_run_killed_before_its_config_says_so(tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "search-try-20250101-000000"
    run_dir.mkdir()
    (run_dir / "run.lock").write_text('{"host": "h", "pid": 1}')
    code, err = run_script(SCRIPTS[0], ["--resume", run_dir], monkeypatch, capsys)
    assert_refused(code, err, "a search killed as it started holds nothing to resume: start it again")
