"""Adding a data set is one registry record: a 5-class digits variant with its own raw
directory, .beton names and mean/std, registered by a small launcher, searched end to end."""
import json
import sys
import textwrap

import pytest
import torch

from tests.helpers import ROOT, only_run_dir, run_script, tiny_args

PY = sys.executable
from nas.data.raw import ImageArrays, digits_rgb32, write_cifar10_batches

pytestmark = pytest.mark.slow

LAUNCHER = textwrap.dedent('''
    import sys

    from nas.data.datasets import DatasetInfo, Normalisation, register
    from nas.data.raw import CifarLayout

    register(DatasetInfo("digits5", 5, 32, Normalisation((0.31,) * 3, (0.35,) * 3),
                         CifarLayout("digits5-py", (), "test_batch", "batches.meta", "labels"),
                         {"train": "digits5_train.beton", "test": "digits5_test.beton"}))

    from nas.data.loaders import ffcv_missing_reason
    from nas.data.writer import write_cifar
    from nas.search.launch import main

    # under the guard: phase-1 helper processes import this module again (for its register call)
    if __name__ == "__main__":
        if sys.argv[1] == "write":
            if not ffcv_missing_reason():
                write_cifar("digits5", sys.argv[2], sys.argv[3])
        else:
            main("evolutionary", "a search on a registered data set", sys.argv[2:])
''')


def test_a_registered_five_class_data_set_is_searched_end_to_end(tmp_path):
    def first_five(arrays):
        keep = arrays.labels < 5
        return ImageArrays(arrays.images[keep], arrays.labels[keep])

    train, test = (first_five(a) for a in digits_rgb32())
    root = tmp_path / "data"
    (root / "digits5-py").mkdir(parents=True)
    write_cifar10_batches(root / "digits5-py", train, test, label_names=[str(d) for d in range(5)])
    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCHER)
    env = {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    wrote = run_script(PY, launcher, "write", root / "digits5-py", root, env=env)
    assert wrote.returncode == 0, wrote.stderr
    save = tmp_path / "runs"
    # --loader auto: FFCV on the record's .beton files where FFCV imports, else the raw pickles
    proc = run_script(PY, launcher, "search", *tiny_args(root, save, "--dataset", "digits5", "--seed", "2",
                                                          "--loader", "auto", "--npop", "1", "--train_subset", "256"),
                     env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    run_dir = only_run_dir(save)
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "finished"
    assert "dataset: digits5" in (run_dir / "config.yaml").read_text()
    model = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert model["classifier.weight"].shape[0] == 5
    log = (run_dir / "log_rank0.txt").read_text()
    assert ("ffcv loader" in log) == (root / "digits5_train.beton").is_file()


def test_the_digits_set_read_as_cifar10_is_called_digits(digits_root, tmp_path):
    from nas.data.datasets import data_label

    assert data_label("cifar10", digits_root) == "digits (read as cifar10)"
    assert data_label("digits", digits_root) == "digits"
    assert data_label("cifar10", tmp_path) == "cifar10"
