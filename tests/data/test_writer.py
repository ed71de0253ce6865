"""scripts/write_datasets.py (nas/tools/data.py) and nas/data/writer.py: data roots from the original formats."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from tests.fake_data import cifar10_dir, cifar100_dir, imagenet_dir
from tests.helpers import ShellCommand
from nas.data import writer as dataset_writer
from nas.data.loaders import ffcv_missing_reason
from nas.data.datasets import get_dataset
from nas.data.raw import is_digits_dir, read_cifar
from nas.core.errors import run_cli
from nas.tools import data as writer

FFCV = ffcv_missing_reason() is None
needs_ffcv = pytest.mark.skipif(not FFCV, reason="FFCV does not import here")
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # see test_data.py
CIFAR10 = get_dataset("cifar10")


def write(*argv) -> int:
    """Run the script in-process as its __main__ does; the exit status."""
    try:
        run_cli(lambda: writer.main([str(a) for a in argv] + ["--workers", "1"]))
    except SystemExit as exc:
        return exc.code
    return 0


def files(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir()) if path.exists() else []


def random_images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def beton_images(path) -> tuple[np.ndarray, np.ndarray]:
    from ffcv.fields.decoders import IntDecoder, SimpleRGBImageDecoder
    from ffcv.loader import Loader, OrderOption
    from ffcv.transforms import ToTensor

    loader = Loader(str(path), batch_size=64, num_workers=1, order=OrderOption.SEQUENTIAL, drop_last=False,
                    pipelines={"image": [SimpleRGBImageDecoder(), ToTensor()], "label": [IntDecoder(), ToTensor()]})
    images, labels = zip(*[(x.numpy().copy(), y.numpy().ravel().copy()) for x, y in loader])
    return np.concatenate(images), np.concatenate(labels)


@pytest.fixture
def cifar10_src(tmp_path):
    return cifar10_dir(tmp_path / "dl" / "cifar-10-batches-py", random_images(25), np.arange(25) % 10,
                       random_images(7, seed=1), np.arange(7) % 10)


@needs_ffcv
def test_cifar10_betons_hold_the_pickled_images_and_link_the_raw_directory(cifar10_src, tmp_path):
    root = tmp_path / "root"
    assert write("cifar10", "--src", cifar10_src, "--out", root) == 0
    assert files(root) == ["cifar-10-batches-py", "cifar_test.beton", "cifar_train.beton"]
    link = root / "cifar-10-batches-py"
    assert link.is_symlink() and link.resolve() == cifar10_src.resolve()
    for split in ("train", "test"):
        raw = read_cifar(cifar10_src, CIFAR10.raw, split, 10)
        images, labels = beton_images(root / f"cifar_{split}.beton")
        assert np.array_equal(images, raw.images) and np.array_equal(labels, raw.labels)
    assert oct(os.stat(root / "cifar_train.beton").st_mode & 0o777) != oct(0o600)  # not left owner-only


@needs_ffcv
def test_cifar100_and_a_source_already_in_the_root(tmp_path):
    src = cifar100_dir(tmp_path / "cifar-100-python", random_images(12), np.arange(12) * 8, random_images(4, 1),
                       np.arange(4))
    assert write("cifar100", "--src", src, "--out", tmp_path) == 0  # no link needed
    assert not (tmp_path / "cifar-100-python").is_symlink()
    assert np.array_equal(beton_images(tmp_path / "cifar_train.beton")[1], np.arange(12) * 8)


@needs_ffcv
def test_existing_outputs_are_kept_unless_overwrite(cifar10_src, tmp_path, capsys):
    root = tmp_path / "root"
    assert write("cifar10", "--src", cifar10_src, "--out", root) == 0
    before = (root / "cifar_train.beton").stat().st_mtime_ns
    capsys.readouterr()
    assert write("cifar10", "--src", cifar10_src, "--out", root) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "already exists" in err[-1] and "--overwrite" in err[-1]
    assert (root / "cifar_train.beton").stat().st_mtime_ns == before
    assert write("cifar10", "--src", cifar10_src, "--out", root, "--overwrite") == 0


def corrupt(src: Path, case: str) -> str:
    """Damage a CIFAR-10 directory; the text the error must contain."""
    batch = src / "data_batch_2"
    if case == "missing directory":
        return str(src.parent / "absent")
    if case == "missing test batch":
        (src / "test_batch").unlink()
        return f"missing {src / 'test_batch'}"
    if case == "not a pickle":
        batch.write_bytes(b"\x00garbage")
        return f"{batch} is not a CIFAR pickle batch"
    entry = pickle.loads(batch.read_bytes(), encoding="bytes")
    if case == "wrong image size":
        entry[b"data"] = entry[b"data"][:, :1024]
        expect = f"{batch}: data is uint8 of shape (5, 1024); expected uint8 rows of 3072"
    elif case == "label out of range":
        entry[b"labels"][0] = 10
        expect = f"{batch}: label 10 out of range; expected 0..9"
    elif case == "planted code":  # a crafted batch whose unpickling would run a command
        entry[b"labels"] = ShellCommand(src.parent / "pwned")
        expect = f"{batch} is not a CIFAR pickle batch (UnpicklingError: it holds a posix.system object"
    elif case == "no data key":
        del entry[b"data"]
        expect = f"{batch} has keys"
    else:  # empty data set
        for i in range(1, 6):
            empty = {b"data": np.zeros((0, 3072), np.uint8), b"labels": []}
            (src / f"data_batch_{i}").write_bytes(pickle.dumps(empty, protocol=2))
        return f"{src} holds no train images"
    batch.write_bytes(pickle.dumps(entry, protocol=2))
    return expect


@pytest.mark.parametrize("case", ["missing directory", "missing test batch", "not a pickle", "wrong image size",
                                  "label out of range", "planted code", "no data key", "empty"])
def test_bad_cifar_input_is_one_line_and_writes_nothing(cifar10_src, tmp_path, capsys, case):
    expect = corrupt(cifar10_src, case)
    src = tmp_path / "dl" / "absent" if case == "missing directory" else cifar10_src
    root = tmp_path / "root"
    assert write("cifar10", "--src", src, "--out", root) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ") and expect in err
    assert files(root) == []
    assert not (cifar10_src.parent / "pwned").exists()


@needs_ffcv
def test_a_different_raw_directory_in_the_root_is_refused(cifar10_src, tmp_path, capsys):
    root = tmp_path / "root"
    (root / "cifar-10-batches-py").mkdir(parents=True)
    assert write("cifar10", "--src", cifar10_src, "--out", root) == 2
    assert "is a directory other than" in capsys.readouterr().err
    assert files(root) == ["cifar-10-batches-py"]


def test_digits_in_the_exact_cifar10_layout(tmp_path):
    root = tmp_path / "digits"
    assert write("digits", "--out", root) == 0
    raw = root / "cifar-10-batches-py"
    assert files(raw) == ["batches.meta", "data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
                          "data_batch_5", "readme.html", "test_batch"]
    # what torchvision's CIFAR10 reads: latin1 pickles, 'data' rows of 3072 and 'labels'
    with open(raw / "data_batch_1", "rb") as f:
        entry = pickle.load(f, encoding="latin1")
    assert entry["data"].shape == (300, 3072) and entry["data"].dtype == np.uint8 and len(entry["labels"]) == 300
    with open(raw / "batches.meta", "rb") as f:
        assert pickle.load(f, encoding="latin1")["label_names"] == [str(d) for d in range(10)]
    train, test = read_cifar(raw, CIFAR10.raw, "train", 10), read_cifar(raw, CIFAR10.raw, "test", 10)
    assert train.images.shape == (1500, 32, 32, 3) and test.images.shape == (297, 32, 32, 3)
    assert set(train.labels) == set(range(10)) and is_digits_dir(raw)
    assert (train.images[..., 0] == train.images[..., 2]).all() and train.images.max() > 200  # grey, full range
    if FFCV:
        assert files(root) == ["cifar-10-batches-py", "cifar_test.beton", "cifar_train.beton"]
        images, labels = beton_images(root / "cifar_test.beton")
        assert np.array_equal(images, test.images) and np.array_equal(labels, test.labels)
    assert write("digits", "--out", root) == 2
    assert write("digits", "--out", root, "--overwrite") == 0 and is_digits_dir(raw)


def test_digits_never_replaces_other_data(tmp_path, capsys):
    other = tmp_path / "cifar-10-batches-py"
    other.mkdir()
    (other / "data_batch_1").write_bytes(b"precious")
    assert write("digits", "--out", tmp_path, "--overwrite") == 2
    assert "refusing to replace" in capsys.readouterr().err and files(other) == ["data_batch_1"]


def test_digits_without_ffcv_writes_the_raw_directory_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(dataset_writer, "ffcv_missing_reason", lambda: "ModuleNotFoundError: No module named 'ffcv'")
    assert write("digits", "--out", tmp_path) == 0
    assert files(tmp_path) == ["cifar-10-batches-py"] and "no .beton files written" in capsys.readouterr().err


@needs_ffcv
def test_imagenet_betons_and_links(tmp_path):
    src = imagenet_dir(tmp_path / "src")
    root = tmp_path / "root"
    assert write("imagenet", "--src", src, "--out", root, "--max-side", 64) == 0
    assert files(root) == ["train", "train.beton", "val", "val.beton"]
    assert (root / "val").resolve() == (src / "val").resolve()
    from ffcv.reader import Reader

    reader = Reader(str(root / "train.beton"))
    assert reader.metadata["f1"].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    image = reader.metadata["f0"]
    assert (image["mode"] == 0).all() and max(image["height"].max(), image["width"].max()) <= 64  # JPEG, max side


@needs_ffcv
@pytest.mark.parametrize("case", ["unreadable image", "no images", "unknown val class", "no train folder",
                                  "bad quality"])
def test_bad_imagenet_input_is_one_line_and_writes_nothing(tmp_path, capsys, case):
    src = imagenet_dir(tmp_path / "src", train_per_class=2, val_per_class=1)
    extra = []
    if case == "unreadable image":
        bad = src / "val" / "n02" / "img0.JPEG"
        bad.write_bytes(b"\xff\xd8 truncated")
        expect = f"{bad} is not a readable image"
    elif case == "no images":
        for p in (src / "val").rglob("*.JPEG"):
            p.unlink()
        expect = f"{src / 'val'} holds no images"
    elif case == "unknown val class":
        (src / "val" / "n99").mkdir()
        expect = "has classes not in the training split: n99"
    elif case == "no train folder":
        os.rename(src / "train", src / "elsewhere")
        expect = f"missing image folder {src / 'train'}"
    else:
        extra, expect = ["--quality", "0"], "--quality 0: expected a JPEG quality in 1..100"
    root = tmp_path / "root"
    assert write("imagenet", "--src", src, "--out", root, *extra) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ") and expect in err
    assert files(root) == []


@pytest.mark.slow
def test_digits_killed_while_replacing_a_root_then_rerun_is_the_uninterrupted_root(tmp_path):
    """SIGKILL of `write_datasets.py digits --overwrite` over an existing root, once its new pickle
    directory is being written: the old root stays whole, and the same command again removes
    the killed writer's hidden directory and writes the same files."""
    import signal
    import subprocess
    import sys
    import time

    from tests.helpers import ROOT, run_script

    script = ROOT / "scripts" / "write_datasets.py"
    out = tmp_path / "digits"
    assert run_script(sys.executable, script, "digits", "--out", out).returncode == 0
    raw = out / "cifar-10-batches-py"
    first = {p.name: p.read_bytes() for p in raw.iterdir()}
    proc = subprocess.Popen([sys.executable, str(script), "digits", "--out", str(out), "--overwrite"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    try:
        while not list(out.glob(".cifar-10-batches-py.*.tmp/data_batch_1")):
            assert proc.poll() is None and time.time() < deadline, "the writer ended before the moment to kill it"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert list(out.glob(".cifar-10-batches-py.*")) and is_digits_dir(raw)  # the old root is whole
    rerun = run_script(sys.executable, script, "digits", "--out", out, "--overwrite")
    assert rerun.returncode == 0, rerun.stderr
    assert "the partial output of an interrupted write" in rerun.stdout
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []
    assert {p.name: p.read_bytes() for p in raw.iterdir()} == first
