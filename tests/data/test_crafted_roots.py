"""Data roots crafted by someone else: dataset.yaml with tags, alias bombs, wrong types, mean or
std of the wrong length, std 0, NaN; .npy files that are object arrays, of the wrong shape or
dtype, labels out of range, negative or not matching the class list, images and labels of
different lengths. Each is one line naming the file and the field, before a run directory is made."""

import sys

import numpy as np
import pytest
import yaml

from nas.core.errors import UserError
from nas.data.datasets import root_dataset
from nas.data.raw import read_arrays
from nas.data.writer import write_folder
from tests.helpers import assert_one_line_error, run_search, tiny_args

GOOD = {"name": "toy", "image_size": 32, "classes": ["a", "b"], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8)
)


def root_with(tmp_path, meta=None, text=None, images=None, labels=None):
    root = tmp_path / "root"
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset.yaml").write_text(text if text is not None else yaml.safe_dump({**GOOD, **(meta or {})}))
    for split in ("train", "val"):
        np.save(root / f"{split}_images.npy", np.zeros((4, 32, 32, 3), np.uint8) if images is None else images)
        np.save(root / f"{split}_labels.npy", np.array([0, 1, 0, 1]) if labels is None else labels)
    return root


@pytest.mark.parametrize(
    "meta, text, message",
    [
        (None, "name: !!python/object/apply:os.system [echo hi]\n", "is not readable YAML: could not determine a constructor"),
        (None, "!custom {name: x}\n", "is not readable YAML: could not determine a constructor for the tag '!custom'"),
        (None, BOMB + "name: *i\n", "is not readable YAML: its aliases expand it to more than"),
        (None, "- a\n- b\n", "holds a list, expected a mapping of name"),
        (None, "", "holds a NoneType, expected a mapping"),
        ({"name": BOMB}, None, None),  # a name is any text
        ({"name": ["a"]}, None, "dataset.yaml: name list: expected a non-empty string"),
        ({"name": ""}, None, "dataset.yaml: name '': expected a non-empty string"),
        ({"image_size": "32"}, None, "dataset.yaml: image_size '32': expected an integer"),
        ({"image_size": True}, None, "dataset.yaml: image_size True: expected an integer"),
        ({"image_size": 33}, None, "dataset.yaml: image_size 33: expected a multiple of 32"),
        ({"image_size": 0}, None, "dataset.yaml: image_size 0: expected a multiple of 32"),
        ({"classes": "ab"}, None, "dataset.yaml: classes 'ab': expected a list of 2 or more distinct"),
        ({"classes": ["a"]}, None, "dataset.yaml: classes list: expected a list of 2 or more distinct"),
        ({"classes": ["a", "a"]}, None, "dataset.yaml: classes list: expected a list of 2 or more distinct"),
        ({"classes": ["a", 1]}, None, "dataset.yaml: classes list: expected a list of 2 or more distinct"),
        ({"classes": ["a", {"b": 1}]}, None, "dataset.yaml: classes list"),
        ({"mean": [0.5, 0.5]}, None, "dataset.yaml: mean list: expected 3 numbers in 0..1"),
        ({"mean": [0.5, 0.5, float("nan")]}, None, "dataset.yaml: mean list: expected 3 numbers in 0..1"),
        ({"mean": [0.5, 0.5, 128]}, None, "dataset.yaml: mean list: expected 3 numbers in 0..1"),
        ({"mean": ["0.5", 0.5, 0.5]}, None, "dataset.yaml: mean list"),
        ({"mean": 0.5}, None, "dataset.yaml: mean 0.5: expected 3 numbers"),
        ({"std": [0.2, 0.2, 0.2, 0.2]}, None, "dataset.yaml: std list: expected 3 numbers in (0, 1]"),
        ({"std": [0.2, 0.0, 0.2]}, None, "dataset.yaml: std list: expected 3 numbers in (0, 1]"),
        ({"std": [0.2, -0.1, 0.2]}, None, "dataset.yaml: std list"),
        ({"std": [0.2, float("inf"), 0.2]}, None, "dataset.yaml: std list"),
        ({"std": [0.2, float("nan"), 0.2]}, None, "dataset.yaml: std list"),
        ({"std": [True, 0.2, 0.2]}, None, "dataset.yaml: std list"),
        ({"std": None}, None, "dataset.yaml: std None: expected 3 numbers"),
    ],
)
def test_a_crafted_description_is_one_line_naming_the_field(tmp_path, meta, text, message):
    root = root_with(tmp_path, meta, text)
    if message is None:
        assert root_dataset(root).name == BOMB
        return
    with pytest.raises(UserError, match=None) as refused:
        root_dataset(root)
    line = str(refused.value)
    assert "\n" not in line and line.startswith(str(root / "dataset.yaml")) and message in line, line


@pytest.mark.parametrize(
    "images, labels, message",
    [
        (np.array([{"a": 1}] * 4, dtype=object), None, "train_images.npy is not a readable .npy array"),
        (None, np.array([0, 1, None, 1], dtype=object), "train_labels.npy is not a readable .npy array"),
        (np.zeros((4, 32, 32, 3), np.float32), None, "train_images.npy holds float32 of shape (4, 32, 32, 3)"),
        (np.zeros((4, 32, 32), np.uint8), None, "train_images.npy holds uint8 of shape (4, 32, 32)"),
        (np.zeros((4, 64, 64, 3), np.uint8), None, "train_images.npy holds uint8 of shape (4, 64, 64, 3)"),
        (np.zeros((), np.uint8), None, "train_images.npy holds uint8 of shape ()"),
        (np.zeros((0, 32, 32, 3), np.uint8), np.zeros(0, np.int64), "train_images.npy holds no images"),
        (None, np.array([0, 1, 0]), "train_labels.npy: (3,) labels for 4 images"),
        (None, np.array([[0, 1, 0, 1]]), "train_labels.npy: (1, 4) labels for 4 images"),
        (None, np.array([0.0, 1.0, 0.0, 1.0]), "train_labels.npy: (4,) labels for 4 images; expected one integer"),
        (None, np.array([0, 1, 2, 1]), "train_labels.npy: labels 0..2; dataset.yaml has 2 classes"),
        (None, np.array([0, -1, 0, 1]), "train_labels.npy: labels -1..1; dataset.yaml has 2 classes"),
        (None, np.array([0, 0, 0, 0]), "train_labels.npy: no image of class 1"),
    ],
)
def test_crafted_arrays_are_one_line_naming_the_file(tmp_path, images, labels, message):
    root = root_with(tmp_path, images=images, labels=labels)
    with pytest.raises(UserError) as refused:
        read_arrays(root, "train", 2, 32)
    assert "\n" not in str(refused.value) and message in str(refused.value), str(refused.value)


@pytest.mark.slow
def test_a_search_on_a_crafted_root_stops_before_its_run_directory(tmp_path):
    save = tmp_path / "runs"
    for i, (meta, labels, message) in enumerate(
        [
            ({"std": [0.2, 0.0, 0.2]}, None, "dataset.yaml: std list"),
            (None, np.array([0, 1, 7, 1]), "train_labels.npy: labels 0..7"),
        ]
    ):
        root = root_with(tmp_path / str(i), meta, labels=labels)
        result = run_search("search_evolutionary.py", *tiny_args(root, save), check=False)
        assert_one_line_error(result, message)
        assert not save.exists() or not any(save.iterdir())


def test_a_constant_colour_class_gets_no_division_by_zero(tmp_path):
    from PIL import Image

    src = tmp_path / "src"
    for name, colour in (("red", (255, 0, 0)), ("also_red", (255, 0, 0))):
        (src / name).mkdir(parents=True)
        for j in range(4):
            Image.new("RGB", (40, 40), colour).save(src / name / f"{j}.png")
    meta = write_folder(src, tmp_path / "root", name="flat", size=32, val_fraction=0.25)
    assert all(v > 0 for v in meta["std"]), meta["std"]  # every pixel is the mean: its std is 0
    info = root_dataset(tmp_path / "root")
    mean, std = info.norm.scaled()
    arrays = read_arrays(tmp_path / "root", "train", 2, 32)
    normalised = (arrays.images.astype(np.float32) - mean) / std
    assert np.isfinite(normalised).all() and np.abs(normalised).max() <= 1.0
    assert sys.platform
