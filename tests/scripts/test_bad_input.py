"""The tool scripts' bad input is one line `error: ...` with exit status 2."""

import sys

from tests.helpers import ROOT, assert_one_line_error, run_script


def test_write_datasets_out_that_cannot_be_created(tmp_path):
    result = run_script(sys.executable, ROOT / "scripts" / "write_datasets.py", "digits", "--out", "/proc/no/such/root")
    assert_one_line_error(result, "--out /proc/no/such/root: cannot create the data root")


def test_write_datasets_out_under_a_file(tmp_path):
    (tmp_path / "file").write_text("")
    result = run_script(
        sys.executable, ROOT / "scripts" / "write_datasets.py", "digits", "--out", tmp_path / "file" / "x"
    )
    assert_one_line_error(result, "cannot create the data root (Not a directory)")


def test_bench_phase1_bad_process_counts(tmp_path):
    for procs in ("1,x", "0,2"):
        result = run_script(
            sys.executable, ROOT / "benchmarks" / "bench_phase1.py", "--data", tmp_path, "--procs", procs
        )
        assert_one_line_error(result, f"--procs '{procs}': expected comma-separated process counts")


def test_study_bad_arguments_are_one_line_before_anything_runs(tmp_path):
    (tmp_path / "data" / "cifar-10-batches-py").mkdir(parents=True)
    (tmp_path / "data" / "cifar-10-batches-py" / "batches.meta").write_text("")
    study = [ROOT / "scripts" / "study.sh", "--out", tmp_path / "study"]
    for args, fragment in (
        (["--data", tmp_path / "none"], f"--data {tmp_path / 'none'}: expected the embedded data set"),
        (["--data", tmp_path / "data", "--jobs", "0"], "--jobs 0: expected a positive integer"),
        (["--data", tmp_path / "data", "--seeds", " "], "expected at least one seed"),
        (["--bogus"], "unknown option '--bogus'"),
    ):
        assert_one_line_error(run_script("bash", *study, *args), fragment)
    assert not (tmp_path / "study").exists()
