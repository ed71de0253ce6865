"""A user's class folders -> a self-describing data root (write_datasets.py folder), read by
the search and evaluation loaders with no registration; every bad input refused in one line."""
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from nas.core.errors import UserError
from nas.data.datasets import root_dataset
from nas.data.loaders import DataConfig, build_eval_loaders, build_search_loaders
from nas.data.raw import load_square
from nas.data.writer import write_folder
from tests.fake_data import class_folders
from tests.helpers import ROOT, assert_one_line_error, run_script

WRITE = ROOT / "scripts" / "write_datasets.py"


def leftovers(parent: Path) -> list:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    return class_folders(tmp_path_factory.mktemp("src") / "images")


@pytest.fixture(scope="module")
def root64(src, tmp_path_factory):
    out = tmp_path_factory.mktemp("roots") / "toy64"
    write_folder(src, out, name="toy64", size=64, val_fraction=0.25, skip_bad=True)
    return out


def test_write_describes_the_root_and_skips_what_it_cannot_read(src, root64):
    meta = yaml.safe_load((root64 / "dataset.yaml").read_text())
    assert meta["name"] == "toy64" and meta["image_size"] == 64
    assert meta["classes"] == ["class0", "class1", "class2"]
    assert meta["skipped_bad"] == 1 and meta["ignored_non_images"] == 1
    assert meta["images"]["train"] + meta["images"]["val"] == 3 * 8  # the broken file left out
    images = np.load(root64 / "train_images.npy")
    assert images.shape == (meta["images"]["train"], 64, 64, 3) and images.dtype == np.uint8
    pixels = images.reshape(-1, 3) / 255
    assert np.allclose(meta["mean"], pixels.mean(0), atol=1e-4) and np.allclose(meta["std"], pixels.std(0), atol=1e-4)
    labels = np.load(root64 / "val_labels.npy")
    assert sorted(set(labels.tolist())) == [0, 1, 2]  # every class has validation images
    info = root_dataset(root64)
    assert (info.name, info.num_classes, info.image_size, info.searchable, info.is_cifar) == ("toy64", 3, 64, True, False)


def test_modes_become_rgb_without_clipping(src):
    sixteen = src / "class0" / "img4.png"  # I;16, the full 16-bit range
    assert Image.open(sixteen).mode == "I;16"
    grey = np.asarray(Image.open(sixteen), dtype=np.float64) / 257
    square = load_square(sixteen, 32).astype(np.float64)
    assert np.allclose(square[..., 0], square[..., 2]) and abs(square.mean() - grey.mean()) < 3
    grey = load_square(src / "class0" / "img1.png", 32)  # L
    assert grey.shape == (32, 32, 3) and (grey[..., 0] == grey[..., 1]).all()
    for name in ("img2.png", "img3.png", "img5.bmp", "img6.webp", "img7.jpg"):  # P RGBA BMP WebP CMYK
        image = load_square(src / "class0" / name, 32)
        assert image.shape == (32, 32, 3) and image[..., 0].mean() > image[..., 1].mean() + 50  # class 0 is red


def test_search_and_eval_loaders_read_the_root_unregistered(root64):
    cfg = DataConfig(root=str(root64), loader="torch", workers=0, val_size=4, cutout=8)
    data = build_search_loaders(cfg, 4, 0, 1, "cpu", channels_last=False)
    images, labels = next(iter(data.train_full))
    assert images.shape == (4, 3, 64, 64) and data.num_classes == 3 and data.image_size == 64
    with pytest.raises(UserError, match="--image_size 32: .* 64 px"):
        build_search_loaders(DataConfig(root=str(root64), loader="torch", workers=0, val_size=4, image_size=32),
                             4, 0, 1, "cpu")
    ev = build_eval_loaders(DataConfig(root=str(root64), loader="torch", workers=0), 4, 0, 1, "cpu")
    images, labels = next(iter(ev.val))
    assert images.shape[1:] == (3, 64, 64) and int(labels.max()) < 3


def test_train_and_val_folders_are_kept_as_given(tmp_path):
    src = tmp_path / "src"
    class_folders(src / "train", per_class=3, corrupt=False, non_image=False)
    class_folders(src / "val", classes=2, per_class=2, seed=1, corrupt=False, non_image=False)
    meta = write_folder(src, tmp_path / "root", name="given", val_fraction=0.5)
    assert meta["images"] == {"train": 9, "val": 4} and meta["classes"] == ["class0", "class1", "class2"]


def test_a_corrupt_image_is_refused_in_one_line_and_nothing_appears(src, tmp_path):
    result = run_script(sys.executable, WRITE, "folder", "--src", src, "--out", tmp_path / "root", "--name", "x",
                        "--workers", "1")
    assert_one_line_error(result, str(src / "class0" / "broken.jpg"))
    assert not (tmp_path / "root").exists() and leftovers(tmp_path) == []


def test_an_existing_root_is_refused_unless_overwrite(src, tmp_path):
    out = tmp_path / "root"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    with pytest.raises(UserError, match="already exists; pass --overwrite"):
        write_folder(src, out, name="x", skip_bad=True)
    with pytest.raises(UserError, match="not a root written by"):  # --overwrite replaces only our own roots
        write_folder(src, out, name="x", skip_bad=True, overwrite=True)
    shutil.rmtree(out)
    write_folder(src, out, name="first", skip_bad=True)
    write_folder(src, out, name="second", skip_bad=True, overwrite=True)
    assert root_dataset(out).name == "second" and leftovers(tmp_path) == []


def _tree(base: Path, layout: dict) -> Path:
    good = next(iter(Image.new("RGB", (8, 8), (200, 0, 0)) for _ in range(1)))
    for rel, n in layout.items():
        (base / rel).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            good.save(base / rel / f"{i}.png")
    return base


@pytest.mark.parametrize("layout, message", [
    ({"a": 2, "b": 0}, "class folder {src}/b holds no images"),
    ({"a": 3}, "has a single class (a)"),
    ({}, "has no class sub-folders"),
    ({"train/a": 2, "train/b": 2, "val/a": 1, "val/c": 1}, "{src}/val/c is a class that {src}/train lacks"),
    ({"a": 1, "b": 3}, "class folder {src}/a holds 1 image"),
])
def test_bad_folders_get_one_line_each(tmp_path, layout, message):
    src = _tree(tmp_path / "src", layout)
    src.mkdir(exist_ok=True)
    with pytest.raises(UserError, match=None) as err:
        write_folder(src, tmp_path / "root", name="x")
    assert message.format(src=src) in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "root").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("kwargs, message", [
    ({"size": 48}, "--size 48: expected a multiple of 32"),
    ({"val_fraction": 1.5}, "--val-fraction 1.5"),
    ({"name": ""}, "--name ''"),
])
def test_bad_options(src, tmp_path, kwargs, message):
    with pytest.raises(UserError, match=None) as err:
        write_folder(src, tmp_path / "root", **{"name": "x", "skip_bad": True, **kwargs})
    assert message in str(err.value)


def test_an_unwritable_out_and_a_missing_src(src, tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="cannot write in"):
        write_folder(src, tmp_path / "file" / "root", name="x", skip_bad=True)
    with pytest.raises(UserError, match="no such directory"):
        write_folder(tmp_path / "nowhere", tmp_path / "root", name="x")


def test_a_damaged_or_missing_description_is_named(root64, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(root64, root)
    (root / "dataset.yaml").write_text("name: [unclosed\n")
    with pytest.raises(UserError, match=f"{root}/dataset.yaml is not readable YAML"):
        root_dataset(root)
    (root / "dataset.yaml").write_text("name: x\nimage_size: 64\n")
    with pytest.raises(UserError, match=f"{root}/dataset.yaml: no classes; expected a list of 2 or more"):
        root_dataset(root)
    (root / "dataset.yaml").unlink()
    with pytest.raises(UserError, match=f"missing {root}/dataset.yaml"):
        build_search_loaders(DataConfig(root=str(root), loader="torch", workers=0), 4, 0, 1, "cpu")


def _start_and_kill(argv, ready, timeout=60) -> None:
    """Run write_datasets.py with `argv`; SIGKILL it as soon as `ready()` holds (while it runs)."""
    import signal
    import subprocess
    import time

    proc = subprocess.Popen([sys.executable, str(WRITE), *map(str, argv)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    try:
        while not ready():
            assert proc.poll() is None, "the writer ended before the moment to kill it"
            assert time.time() < deadline, "the writer did not reach the moment to kill it"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()


def _partials(parent: Path, name: str) -> list:
    return [p for p in parent.iterdir() if p.name.startswith(f".{name}.")]


@pytest.mark.slow
def test_a_write_killed_at_several_moments_then_rerun_gives_the_uninterrupted_root(tmp_path):
    """SIGKILL while a new root is written and while an existing root is replaced: the same
    command again writes the root an uninterrupted run writes and removes what the killed
    one left beside it."""
    src = class_folders(tmp_path / "images", per_class=12, corrupt=False, non_image=False)
    straight = tmp_path / "straight" / "toy"
    write_folder(src, straight, name="toy", size=32)
    out = tmp_path / "killed" / "toy"
    out.parent.mkdir()
    argv = ["folder", "--src", src, "--name", "toy", "--size", "32", "--overwrite", "--out", out]
    for n in range(2):  # the second time with the root of the first rerun in place
        _start_and_kill(argv, lambda: any((p / "train_images.npy").exists() for p in _partials(out.parent, "toy")))
        assert _partials(out.parent, "toy")  # killed mid-way: its partial output is there
        assert out.exists() == (n == 1)  # an old root stays until the new one is complete
        rerun = run_script(sys.executable, WRITE, *argv)
        assert rerun.returncode == 0, rerun.stderr
        assert "the partial output of an interrupted write" in rerun.stdout
        assert _partials(out.parent, "toy") == []
        for f in ("train_images.npy", "train_labels.npy", "val_images.npy", "val_labels.npy"):
            assert np.array_equal(np.load(out / f), np.load(straight / f)), f
        assert yaml.safe_load((out / "dataset.yaml").read_text()) == yaml.safe_load(
            (straight / "dataset.yaml").read_text()
        )
