"""Tiny data sets on disk in the exact original formats, for the data tests.

CIFAR pickles are written as Python 2 wrote them, seen from Python 3: bytes keys and bytes
strings (what pickle.load(..., encoding='bytes') returns for the real files).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def coordinate_images(ids) -> np.ndarray:
    """32x32 RGB images whose pixels say where they come from: red = 8 * row, green = 8 * col
    (so 0..248), blue = 50 + 2 * id (unique per image, never 0 nor a mean colour)."""
    ids = np.asarray(ids)
    rows, cols = np.mgrid[0:32, 0:32]
    images = np.empty((len(ids), 32, 32, 3), np.uint8)
    images[..., 0] = 8 * rows
    images[..., 1] = 8 * cols
    images[..., 2] = (50 + 2 * ids)[:, None, None]
    return images


def _rows(images: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(len(images), -1))


def _dump(path: Path, obj) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def cifar10_dir(path, train_images, train_labels, test_images, test_labels, batches: int = 5) -> Path:
    """data_batch_1..`batches`, test_batch, batches.meta, as the real cifar-10-batches-py."""
    path = Path(path)
    path.mkdir(parents=True)
    for i, idx in enumerate(np.array_split(np.arange(len(train_labels)), batches), 1):
        _dump(
            path / f"data_batch_{i}",
            {
                b"batch_label": f"training batch {i} of {batches}".encode(),
                b"labels": [int(v) for v in train_labels[idx]],
                b"data": _rows(train_images[idx]),
                b"filenames": [f"img_{j}.png".encode() for j in idx],
            },
        )
    _dump(
        path / "test_batch",
        {
            b"batch_label": b"testing batch 1 of 1",
            b"labels": [int(v) for v in test_labels],
            b"data": _rows(test_images),
            b"filenames": [b"t.png"] * len(test_labels),
        },
    )
    _dump(
        path / "batches.meta",
        {
            b"num_cases_per_batch": len(train_labels) // batches,
            b"label_names": [f"class{i}".encode() for i in range(10)],
            b"num_vis": 3072,
        },
    )
    return path


def cifar100_dir(path, train_images, train_labels, test_images, test_labels) -> Path:
    """train, test, meta, as the real cifar-100-python."""
    path = Path(path)
    path.mkdir(parents=True)
    for name, images, labels in (("train", train_images, train_labels), ("test", test_images, test_labels)):
        _dump(
            path / name,
            {
                b"filenames": [b"x.png"] * len(labels),
                b"batch_label": name.encode(),
                b"fine_labels": [int(v) for v in labels],
                b"coarse_labels": [int(v) // 5 for v in labels],
                b"data": _rows(images),
            },
        )
    _dump(
        path / "meta",
        {
            b"fine_label_names": [f"c{i}".encode() for i in range(100)],
            b"coarse_label_names": [f"s{i}".encode() for i in range(20)],
        },
    )
    return path


def imagenet_dir(
    path, classes=("n01", "n02", "n03"), train_per_class: int = 3, val_per_class: int = 2, seed: int = 0
) -> Path:
    """`path`/train/<class>/*.JPEG and `path`/val/<class>/*.JPEG: smooth colour patterns of
    assorted sizes (smooth, so that JPEG re-encoding and resampling change little)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    path = Path(path)
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for c in classes:
            (path / split / c).mkdir(parents=True)
            for i in range(count):
                h, w = (int(v) for v in rng.integers(40, 90, 2))
                rows, cols = np.mgrid[0:h, 0:w]
                base = rng.integers(40, 215, 3)
                image = np.stack([base[k] + 40 * np.sin(cols / (6.0 + k) + rows / 9.0) for k in range(3)], -1)
                Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(path / split / c / f"img{i}.JPEG", quality=95)
    return path


# the mixed files of a user's class folders: (mode, extension, PIL save options)
FOLDER_KINDS = (
    ("RGB", ".jpg", {"quality": 90}),
    ("L", ".png", {}),
    ("P", ".png", {}),
    ("RGBA", ".png", {}),
    ("I;16", ".png", {}),
    ("RGB", ".bmp", {}),
    ("RGB", ".webp", {}),
    ("CMYK", ".jpg", {}),
)


def folder_image(rng, mode: str, size: tuple, label: int):
    """A synthetic image of `mode` whose colour depends on its class (so it can be learned)."""
    from PIL import Image

    w, h = size
    base = np.zeros((h, w, 3), np.float64)
    base[..., label % 3] = 200.0
    base += rng.uniform(0, 55, size=(h, w, 3))
    rgb = Image.fromarray(base.astype(np.uint8))
    if mode == "I;16":  # the full 16-bit range: a plain convert would clip it
        grey = np.asarray(rgb.convert("L"), dtype=np.uint16) * 257
        return Image.fromarray(grey)  # mode I;16
    return rgb.convert(mode) if mode != "RGB" else rgb


def class_folders(
    path,
    classes: int = 3,
    per_class: int = 8,
    seed: int = 0,
    corrupt: bool = True,
    non_image: bool = True,
    sizes=((40, 30), (70, 90), (64, 64), (33, 120)),
) -> Path:
    """`path`/class<i>/img<j>.<ext>: images of mixed sizes, modes and formats; with `corrupt`
    one truncated JPEG (class0/broken.jpg), with `non_image` a notes.txt in class1."""
    path = Path(path)
    rng = np.random.default_rng(seed)
    for c in range(classes):
        folder = path / f"class{c}"
        folder.mkdir(parents=True)
        for j in range(per_class):
            mode, ext, options = FOLDER_KINDS[(c + j) % len(FOLDER_KINDS)]
            folder_image(rng, mode, sizes[j % len(sizes)], c).save(folder / f"img{j}{ext}", **options)
    if corrupt:
        good = (path / "class0" / "img0.jpg").read_bytes()
        (path / "class0" / "broken.jpg").write_bytes(good[: len(good) // 3])
    if non_image:
        (path / "class1" / "notes.txt").write_text("not an image\n")
    return path
