"""Raw on-disk data sets: CIFAR python pickle batches, ImageNet-style class folders, and the
embedded digits set (scikit-learn's 8x8 digits brought to 32x32 RGB, written as CIFAR-10).

These readers serve both the .beton writer and the torchvision fallback loader, so the two
always see the same images and labels. Bad input raises UserError naming the path.
"""
from __future__ import annotations

import codecs
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from nas.core.errors import UserError, describe_os_error
from nas.core.files import check_regular, open_regular, owner_tag, remove_stale_partials

try:
    from numpy._core import multiarray as _multiarray, numeric as _numeric
except ImportError:  # numpy 1
    from numpy.core import multiarray as _multiarray, numeric as _numeric


@dataclass(frozen=True)
class CifarLayout:
    """CIFAR python pickle batches of 32x32 images, in one directory of a data root."""
    dirname: str           # the raw directory inside a data root
    train_files: tuple     # () = data_batch_1, data_batch_2, ... as many as exist
    test_file: str
    meta_file: str
    label_key: str


@dataclass(frozen=True)
class FolderLayout:
    """ImageNet-style class folders: `root`/<split>/<class>/<image>, one folder per split."""


@dataclass(frozen=True)
class ArrayLayout:
    """A root written by `write_datasets.py folder`: `root`/<split>_images.npy (N x S x S x 3
    uint8, RGB) and `root`/<split>_labels.npy (N int64), described by `root`/dataset.yaml."""


CIFAR10_PICKLES = CifarLayout("cifar-10-batches-py", (), "test_batch", "batches.meta", "labels")
CIFAR100_PICKLES = CifarLayout("cifar-100-python", ("train",), "test", "meta", "fine_labels")
CIFAR_SIZE = 32  # the pickle format's image side
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif")
# Written into the digits set's raw directory (real CIFAR-10 ships a readme.html too); it marks
# a directory this toolkit may replace on --overwrite.
DIGITS_README = "<p>scikit-learn 8x8 digits at 32x32 RGB, written by PertNAS scripts/write_datasets.py digits</p>\n"


@dataclass
class ImageArrays:
    images: np.ndarray  # (N, S, S, 3) uint8, RGB (S = 32 for CIFAR)
    labels: np.ndarray  # (N,) int64


def _expected(layout: CifarLayout) -> str:
    train = ", ".join(layout.train_files) or "data_batch_1..5"
    return f"{layout.dirname}/ holding {train}, {layout.test_file}, {layout.meta_file}"


def cifar_batch_files(raw_dir, layout: CifarLayout, split: str) -> list[Path]:
    """The pickle files of one split ('train' or 'test') in a CIFAR raw directory."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise UserError(f"missing CIFAR directory {raw_dir} (expected {_expected(layout)})")
    if split == "test":
        names = [layout.test_file]
    elif layout.train_files:
        names = list(layout.train_files)
    else:  # CIFAR-10 style: data_batch_1..N, consecutive
        names = []
        while (raw_dir / f"data_batch_{len(names) + 1}").is_file():
            names.append(f"data_batch_{len(names) + 1}")
        if not names:
            raise UserError(f"missing {raw_dir / 'data_batch_1'} (expected {_expected(layout)})")
    paths = [raw_dir / n for n in names]
    for p in paths:
        if not p.is_file():
            raise UserError(f"missing {p} (expected {_expected(layout)})")
    return paths


def _latin1(text: str, encoding: str) -> bytes:
    # how Python 3 pickles bytes at protocol 2 (our batches); any other codec is not CIFAR's
    if encoding != "latin1":
        raise pickle.UnpicklingError(f"it encodes with {encoding!r}")
    return codecs.encode(text, "latin1")


class _CifarUnpickler(pickle.Unpickler):
    """Admits only what a CIFAR batch holds: dicts, lists, tuples, bytes, strings, numbers and
    numpy arrays. A pickle names the functions that rebuild its objects, so a crafted batch could
    name any function (os.system); every name outside the array's rebuilders is refused."""

    ALLOWED = {
        ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
        # numpy 1 (the originals) and numpy 2 spell the array rebuilders' module differently
        ("numpy.core.multiarray", "_reconstruct"): _multiarray._reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _multiarray._reconstruct,
        ("numpy.core.numeric", "_frombuffer"): _numeric._frombuffer,  # pickle protocol 5
        ("numpy._core.numeric", "_frombuffer"): _numeric._frombuffer,
        ("_codecs", "encode"): _latin1,
        ("__builtin__", "bytes"): bytes, ("builtins", "bytes"): bytes,  # b"" at protocol 2
    }

    def find_class(self, module: str, name: str):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"it holds a {module}.{name} object, which a CIFAR batch never does; "
                                         f"refused unread, since loading it could run code") from None


def _unpickle(path: Path) -> dict:
    try:
        with open_regular(path) as f:
            entry = _CifarUnpickler(f, encoding="bytes").load()
    except OSError as exc:  # unreadable (permissions, I/O error): the file may well be a batch
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # any unreadable pickle is the user's file, not our bug
        raise UserError(f"{path} is not a CIFAR pickle batch ({type(exc).__name__}: {exc})") from None
    if not isinstance(entry, dict):
        raise UserError(f"{path} is not a CIFAR pickle batch (holds a {type(entry).__name__}, expected a dict)")
    # The originals were pickled by Python 2 (bytes keys under encoding='bytes'); ours by Python 3.
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}


def read_cifar_batch(path, label_key: str, num_classes: int) -> ImageArrays:
    path = Path(path)
    entry = _unpickle(path)
    if "data" not in entry or label_key not in entry:
        raise UserError(f"{path} has keys {sorted(entry)}; a CIFAR batch needs 'data' and {label_key!r}")
    data, labels = entry["data"], np.asarray(entry[label_key])
    if labels.size == 0:  # an empty list reads as float64
        labels = labels.astype(np.int64)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3 * CIFAR_SIZE * CIFAR_SIZE:
        shape = getattr(data, "shape", None)
        raise UserError(f"{path}: data is {getattr(data, 'dtype', type(data).__name__)} of shape {shape}; "
                        f"expected uint8 rows of {3 * CIFAR_SIZE * CIFAR_SIZE} (32x32 RGB images)")
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise UserError(f"{path}: {len(labels)} labels for {len(data)} images; expected one integer label per image")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise UserError(f"{path}: label {int(labels.max()) if labels.max() >= num_classes else int(labels.min())} "
                        f"out of range; expected 0..{num_classes - 1}")
    images = data.reshape(-1, 3, CIFAR_SIZE, CIFAR_SIZE).transpose(0, 2, 3, 1)
    return ImageArrays(np.ascontiguousarray(images), labels.astype(np.int64))


def read_cifar(raw_dir, layout: CifarLayout, split: str, num_classes: int) -> ImageArrays:
    """All images of one split of a CIFAR pickle directory, as NHWC uint8 and int64 labels."""
    parts = [read_cifar_batch(p, layout.label_key, num_classes) for p in cifar_batch_files(raw_dir, layout, split)]
    arrays = ImageArrays(np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts]))
    if len(arrays.labels) == 0:
        raise UserError(f"{raw_dir} holds no {split} images")
    return arrays


def write_cifar10_batches(dest, train: ImageArrays, test: ImageArrays, label_names: Sequence[str],
                          num_train_batches: int = 5, readme: str = DIGITS_README) -> None:
    """Fill the existing directory `dest` in the exact CIFAR-10 python format: data_batch_1..N,
    test_batch, batches.meta (pickle protocol 2, as the originals), and a readme.html."""
    dest = Path(dest)
    chunks = np.array_split(np.arange(len(train.labels)), num_train_batches)
    for i, idx in enumerate(chunks, 1):
        _dump_batch(dest / f"data_batch_{i}", f"training batch {i} of {num_train_batches}",
                    train.images[idx], train.labels[idx], start=int(idx[0]) if len(idx) else 0)
    _dump_batch(dest / "test_batch", "testing batch 1 of 1", test.images, test.labels, start=0)
    meta = {"num_cases_per_batch": len(chunks[0]), "label_names": list(label_names), "num_vis": 3072}
    with open(dest / "batches.meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    (dest / "readme.html").write_text(readme)


def _dump_batch(path: Path, batch_label: str, images: np.ndarray, labels: np.ndarray, start: int) -> None:
    # CIFAR rows are channel-planar: 1024 red, then 1024 green, then 1024 blue values.
    data = np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(len(images), -1), dtype=np.uint8)
    entry = {"batch_label": batch_label, "labels": [int(v) for v in labels], "data": data,
             "filenames": [f"digit_{start + i:05d}.png" for i in range(len(images))]}
    with open(path, "wb") as f:
        pickle.dump(entry, f, protocol=2)


def partial_prefix(name: str) -> str:
    """The prefix of a temporary file or directory written beside `name`: it names this
    process, so that a later writer can tell a killed writer's leftovers from a live one's."""
    return f".{name}.{owner_tag()}."


def forget_partials(parent, name: str) -> None:
    """Remove what writers of `parent/name` that were killed left beside it, saying so."""
    for path in remove_stale_partials(parent, name):
        print(f"removed {path}: the partial output of an interrupted write", flush=True)


def default_mode(directory: bool = False) -> int:
    """Permissions a plain open()/mkdir() would give (temporary files are owner-only)."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


def is_digits_dir(path) -> bool:
    readme = Path(path) / "readme.html"
    return readme.is_file() and readme.read_text(errors="replace") == DIGITS_README


def digits_rgb32(test_size: int = 297, seed: int = 0) -> tuple[ImageArrays, ImageArrays]:
    """scikit-learn's 1797 8x8 digits (shipped with the package, no download) as 32x32 RGB:
    ink scaled to 0..255, bicubic upsampling, grey copied to three channels; a fixed seeded
    split into 1500 training and 297 test images."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    grey = np.clip(np.round(digits.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    big = np.stack([np.asarray(Image.fromarray(g).resize((CIFAR_SIZE, CIFAR_SIZE), Image.BICUBIC)) for g in grey])
    images = np.repeat(big[..., None], 3, axis=3)
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(labels))
    test, train = np.sort(order[:test_size]), np.sort(order[test_size:])
    return ImageArrays(images[train], labels[train]), ImageArrays(images[test], labels[test])


# ------------------------------------------------------------------ ImageNet-style folders
@dataclass
class ImageFolder:
    paths: list        # str paths, class by class, sorted
    labels: np.ndarray  # int64 class index
    classes: list      # sorted class folder names


def _raise(exc: OSError) -> None:
    raise exc


def list_image_folder(folder, classes: Sequence[str] | None = None) -> ImageFolder:
    """`folder/<class>/**/*.JPEG` like torchvision's ImageFolder: classes are the sorted
    sub-folder names (or `classes`, the training split's, so labels agree across splits)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"missing image folder {folder} (expected {folder}/<class>/<image>.JPEG)")
    found = sorted(e.name for e in os.scandir(folder) if e.is_dir())
    if not found:
        raise UserError(f"{folder} has no class sub-folders (expected {folder}/<class>/<image>.JPEG)")
    if classes is None:
        classes = found
    else:
        unknown = sorted(set(found) - set(classes))
        if unknown:
            raise UserError(f"{folder} has classes not in the training split: {', '.join(unknown[:5])}")
    index = {c: i for i, c in enumerate(classes)}
    paths, labels = [], []
    for name in found:
        for root, dirs, files in os.walk(folder / name, followlinks=True, onerror=_raise):  # never skip a folder
            dirs.sort()
            for f in sorted(files):
                if f.lower().endswith(IMAGE_EXTENSIONS):
                    paths.append(os.path.join(root, f))
                    labels.append(index[name])
    if not paths:
        raise UserError(f"{folder} holds no images (expected {folder}/<class>/<image>.JPEG)")
    return ImageFolder(paths, np.asarray(labels, dtype=np.int64), list(classes))


def load_rgb(path) -> np.ndarray:
    """An image file as HxWx3 uint8 RGB (greyscale, palette and CMYK converted)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.array(im.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError) as exc:  # PIL's UnidentifiedImageError is an OSError
        raise UserError(f"{path} is not a readable image ({exc})") from None


# ------------------------------------------------------------------ folder roots (ArrayLayout)
def array_paths(root, split: str) -> tuple[Path, Path]:
    return Path(root) / f"{split}_images.npy", Path(root) / f"{split}_labels.npy"


def read_arrays(root, split: str, num_classes: int, image_size: int) -> ImageArrays:
    """One split of a folder root, memory-mapped (a large set is not read into memory)."""
    images_path, labels_path = array_paths(root, split)
    arrays = []
    for path in (images_path, labels_path):
        if not os.path.lexists(path):
            raise UserError(f"missing {path} (expected a root written by scripts/write_datasets.py folder)")
        try:
            check_regular(path)  # np.load would wait on a FIFO
        except OSError as exc:
            raise UserError(describe_os_error(exc)) from None
        try:
            arrays.append(np.load(path, mmap_mode="c", allow_pickle=False))  # copy-on-write: torch wants writable
        except Exception as exc:  # a truncated or foreign file is the user's
            raise UserError(f"{path} is not a readable .npy array ({type(exc).__name__}: {exc})") from None
    images, labels = arrays
    if images.dtype != np.uint8 or images.shape[1:] != (image_size, image_size, 3):
        raise UserError(f"{images_path} holds {images.dtype} of shape {images.shape}; expected uint8 "
                        f"N x {image_size} x {image_size} x 3 (the image size of dataset.yaml)")
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
        raise UserError(f"{labels_path}: {labels.shape} labels for {len(images)} images; expected one integer each")
    if len(labels) == 0:
        raise UserError(f"{images_path} holds no images")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.min() < 0 or labels.max() >= num_classes:
        raise UserError(f"{labels_path}: labels {labels.min()}..{labels.max()}; dataset.yaml has "
                        f"{num_classes} classes")
    if split == "train":  # the writer puts every class in the training split: one absent means the lists disagree
        absent = np.flatnonzero(np.bincount(labels, minlength=num_classes) == 0)
        if absent.size:
            raise UserError(f"{labels_path}: no image of class {int(absent[0])} ({absent.size} of the {num_classes} "
                            f"classes of dataset.yaml have none); expected every class in the training split")
    return ImageArrays(images, labels)


def to_rgb8(im) -> np.ndarray:
    """A PIL image of any mode as HxWx3 uint8 RGB: 16- and 32-bit greyscale scaled down from
    their range (PIL's convert would clip them at 255), palette and alpha images through RGBA
    (the alpha dropped), everything else by PIL's own conversion."""

    if im.mode.startswith("I") or im.mode == "F":
        grey = np.asarray(im, dtype=np.float64)
        if im.mode == "F" and grey.max(initial=0) <= 1.0:
            grey = grey * 255.0
        elif grey.max(initial=0) > 255:
            grey = grey / 257.0  # 65535 -> 255
        grey = np.clip(np.round(grey), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if im.mode == "P":
        im = im.convert("RGBA")
    return np.asarray(im.convert("RGB") if im.mode != "RGB" else im, dtype=np.uint8)


def load_square(path, size: int) -> np.ndarray:
    """An image file as size x size x 3 uint8 RGB: EXIF orientation applied, the shorter side
    resized to `size` (bicubic), then the centre crop. Raises UserError naming the file."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            im.load()  # decode now: a truncated file fails here, not later
            im = ImageOps.exif_transpose(im)
            rgb = Image.fromarray(to_rgb8(im))
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError...
        raise UserError(f"{path} is not a readable image ({type(exc).__name__}: {exc})") from None
    w, h = rgb.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    if (nw, nh) != (w, h):
        rgb = rgb.resize((nw, nh), Image.BICUBIC)
    left, top = (nw - size) // 2, (nh - size) // 2
    return np.asarray(rgb.crop((left, top, left + size, top + size)), dtype=np.uint8)
