"""Run directories and data roots with planted symbolic links, FIFOs and devices: nothing
outside is written, nothing waits, a non-regular file is refused in one line naming it, and a
link loop under a sweep root is reported once."""

import contextlib
import json
import logging
import os
import signal
import sys

import numpy as np
import pytest

from nas.core.errors import UserError, describe_os_error
from nas.core.files import append_jsonl, append_line, read_json, read_yaml, torch_load, torch_save, write_text
from nas.core.rundir import find_run_dirs, read_config, read_state, setup_logging
from nas.data.raw import read_arrays, read_cifar_batch
from nas.tools.report import main as report_main
from nas.tools.runs import main as runs_main
from tests.report.fabricate import fabricate


class Hung(BaseException):
    """Not an OSError nor an Exception: no reader's handler swallows it."""


@contextlib.contextmanager
def within(seconds=30):
    """Fail instead of hanging (the old code waited on a FIFO for a writer forever)."""

    def expire(signum, frame):
        raise Hung(f"still waiting after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def planted(path, kind, outside=None):
    """`kind` at `path`: a FIFO, a link to /dev/zero, or a link to the file `outside`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "zero":
        path.symlink_to("/dev/zero")
    else:
        path.symlink_to(outside)
    return path


@pytest.fixture
def outside(tmp_path):
    victim = tmp_path / "outside.txt"
    victim.write_text("precious\n")
    return victim


@pytest.mark.parametrize("kind", ["fifo", "zero", "link", "hardlink"])
def test_appends_never_write_through_a_planted_file(tmp_path, outside, kind):
    log = tmp_path / "run" / "stages.jsonl"
    if kind == "hardlink":
        log.parent.mkdir()
        os.link(outside, log)
    else:
        planted(log, kind, outside)
    for append in (lambda: append_line(log, "x"), lambda: append_jsonl(log, {"x": 1})):
        with within(), pytest.raises(OSError) as refused:
            append()
        assert str(log) in describe_os_error(refused.value) and "refused" in describe_os_error(refused.value)
    assert outside.read_text() == "precious\n"


@pytest.mark.parametrize("kind", ["fifo", "zero", "link"])
def test_a_run_log_never_writes_through_a_planted_file(tmp_path, outside, kind):
    run = tmp_path / "run"
    planted(run / "log_rank0.txt", kind, outside)
    with within(), pytest.raises(OSError, match="refused"):
        setup_logging(run, rank=0)
    logging.getLogger("nas").info("a line")
    assert outside.read_text() == "precious\n"


def test_a_new_log_and_a_new_jsonl_are_written(tmp_path):
    setup_logging(tmp_path, rank=0)
    logging.getLogger("nas").info("first line")
    append_jsonl(tmp_path / "epochs.jsonl", {"epoch": 1})
    append_jsonl(tmp_path / "epochs.jsonl", {"epoch": 2})
    assert "first line" in (tmp_path / "log_rank0.txt").read_text()
    assert [json.loads(s)["epoch"] for s in (tmp_path / "epochs.jsonl").read_text().splitlines()] == [1, 2]


@pytest.mark.parametrize("kind", ["fifo", "zero", "link"])
def test_atomic_writes_replace_a_planted_file(tmp_path, outside, kind):
    for name in ("report.html", "state.json", "checkpoints/last.pt"):
        path = planted(tmp_path / "run" / name, kind, outside)
        with within():
            torch_save(path, {"a": 1}) if name.endswith(".pt") else write_text(path, "new\n")
        assert path.is_file() and not path.is_symlink()
    assert outside.read_text() == "precious\n"


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_reads_of_a_fifo_or_a_device_are_refused_at_once(tmp_path, kind):
    run = tmp_path / "run"
    for name in ("state.json", "config.yaml", "checkpoints/last.pt"):
        planted(run / name, kind)
    with within():
        assert read_state(run) is None  # the report and the run table: listed as unreadable
        with pytest.raises(UserError, match="config.yaml is unreadable"):
            read_config(run, "--resume")
        with pytest.raises(UserError, match="last.pt: is a (FIFO|character device), not a regular file: refused"):
            torch_load(run / "checkpoints" / "last.pt", "cpu", "--resume")
        for read in (read_json, read_yaml):
            with pytest.raises(OSError, match="not a regular file"):
                read(run / "state.json")


def test_a_link_to_a_regular_file_is_read(tmp_path):
    (tmp_path / "real.json").write_text('{"a": 1}')
    (tmp_path / "state.json").symlink_to(tmp_path / "real.json")
    assert read_json(tmp_path / "state.json") == {"a": 1}


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_planted_data_files_are_refused_in_one_line(tmp_path, kind):
    np.save(tmp_path / "train_labels.npy", np.zeros(4, np.int64))
    planted(tmp_path / "train_images.npy", kind)
    planted(tmp_path / "data_batch_1", kind)
    with within():
        with pytest.raises(UserError, match="train_images.npy: is a .*, not a regular file: refused"):
            read_arrays(tmp_path, "train", 2, 32)
        with pytest.raises(UserError, match="data_batch_1"):
            read_cifar_batch(tmp_path / "data_batch_1", "labels", 10)


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_run_table_and_report_of_a_run_with_planted_files(tmp_path, capsys, kind):
    run = fabricate(tmp_path / "sweep" / "search-a-1")
    for name in ("state.json", "config.yaml", "decisions.json", "genotype.json", "stages.jsonl", "summary.json"):
        planted(run / name, kind)
    planted(run / "log_rank0.txt", kind)
    with within(120):  # a report renders figures: seconds, more on a loaded machine
        runs_main([str(tmp_path / "sweep")])
        report_main([str(tmp_path / "sweep")])
    assert "broken" in capsys.readouterr().out
    assert "config.yaml unreadable" in (run / "report.html").read_text()


def test_a_link_loop_under_a_sweep_root_is_reported_once(tmp_path, capsys):
    root = tmp_path / "sweep"
    fabricate(root / "a" / "search-x-1")
    (root / "a" / "up").symlink_to("..")  # a loop
    (root / "b").mkdir()
    for n in range(3):  # two loops per level: the old walk took 2^40 paths
        (root / "b" / f"up{n}").symlink_to("..")
    (root / "self").symlink_to("self")  # a link to itself
    with within(120):  # a report renders figures: seconds, more on a loaded machine
        assert find_run_dirs(root) == [root / "a" / "search-x-1"]
        err = capsys.readouterr().err
        assert err.count("warning: skipped") == 4 and f"skipped {root / 'a' / 'up'}: it is {root} again" in err
        runs_main([str(root)])
        report_main([str(root)])
    captured = capsys.readouterr()
    assert captured.out.count("search-x-1") == 1 and captured.err.count(f"skipped {root / 'a' / 'up'}") == 2
    assert "searches (1)" in captured.out and sys.platform.startswith("linux")


def test_a_config_alias_bomb_in_a_copied_run_is_listed_not_expanded(tmp_path, capsys):
    from tests.data.test_crafted_roots import BOMB

    run = fabricate(tmp_path / "sweep" / "search-a-1")
    (run / "config.yaml").write_text(BOMB + "note: *i\n")  # 10^9 values once expanded
    with within(120):
        runs_main([str(tmp_path / "sweep")])
        report_main([str(run)])
    assert "status: broken: config.yaml unreadable" in (run / "report.html").read_text()


def test_a_config_flag_naming_a_fifo_is_refused_in_one_line(tmp_path):
    from nas.core.config import load_yaml

    with within(), pytest.raises(UserError, match="config file .*fifo is unreadable: is a FIFO, not a regular file"):
        load_yaml(planted(tmp_path / "fifo", "fifo"))


def test_a_resume_refuses_a_run_sub_directory_linked_elsewhere(tmp_path):
    from nas.core.files import check_writable

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "run").mkdir()
    check_writable(tmp_path / "run", "--resume run")
    (tmp_path / "run" / "checkpoints").symlink_to(elsewhere)
    with pytest.raises(UserError, match="checkpoints is a symbolic link to the directory .*elsewhere: refused"):
        check_writable(tmp_path / "run", "--resume run")
