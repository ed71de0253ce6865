"""The loaders (nas/data.py): both backends on tiny fabricated CIFAR and ImageNet data."""
from __future__ import annotations

import logging
import threading

import numpy as np
import pytest
import torch

from tests.fake_data import cifar100_dir, coordinate_images, imagenet_dir
from nas.data import loaders as D
from nas.core.engine import Precision
from nas.core.errors import UserError
from nas.data.datasets import DATASETS, get_dataset

FFCV = D.ffcv_missing_reason() is None
needs_ffcv = pytest.mark.skipif(not FFCV, reason="FFCV does not import here")
BACKENDS = ["torch", pytest.param("ffcv", marks=needs_ffcv)]
TRAIN, TEST = 100, 30
# numba's dispatcher finaliser raises a harmless KeyError when FFCV's compiled decoders are
# garbage collected; pytest would report it as an unraisable-exception warning.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory):
    """CIFAR-100 layout; training image i has label i (labels name the samples) and shows its
    own coordinates (fake_data.coordinate_images); test image j has label j."""
    tmp = tmp_path_factory.mktemp("cifar")
    src = cifar100_dir(tmp / "src" / "cifar-100-python", coordinate_images(np.arange(TRAIN)), np.arange(TRAIN),
                       coordinate_images(np.arange(TEST)), np.arange(TEST))
    root = tmp / "root"
    if FFCV:
        from nas.data.writer import write_cifar

        write_cifar("cifar100", src, root, workers=1)
    else:
        root.mkdir()
        (root / "cifar-100-python").symlink_to(src)
    return root


def cfg(root, backend="torch", **kw) -> D.DataConfig:
    kw.setdefault("workers", 0 if backend == "torch" else 1)
    return D.DataConfig(root=str(root), dataset=kw.pop("dataset", "cifar100"), loader=backend, **kw)


def epoch(loader, n=None):
    if n is not None:
        loader.set_epoch(n)
    batches = list(loader)
    return torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches])


def labels(loader, n=None) -> list:
    return epoch(loader, n)[1].tolist()


# ---------------------------------------------------------------- format and both backends agree
@pytest.mark.parametrize("backend", BACKENDS)
def test_batches_are_normalised_float_nchw_on_the_cpu(cifar_root, backend):
    for channels_last in (True, False) if backend == "torch" else (True,):  # the layout step is shared
        data = D.build_search_loaders(cfg(cifar_root, backend, val_size=20), 16, 0, 1, "cpu",
                                      channels_last=channels_last, precision=Precision("cpu", None))
        x, y = next(iter(data.val))
        assert x.shape == (16, 3, 32, 32) and x.dtype == torch.float32 and x.device.type == "cpu"
        assert y.dtype == torch.int64 and y.shape == (16,)
        layout = torch.channels_last if channels_last else torch.contiguous_format
        assert x.is_contiguous(memory_format=layout)
    assert (data.num_classes, data.image_size, data.backend) == (100, 32, backend)
    assert (len(data.train_full), len(data.train_shard), len(data.val)) == (5, 5, 2)  # 80 // 16; ceil(20 / 16)


@needs_ffcv
def test_validation_pipelines_of_both_backends_are_identical(cifar_root):
    for build, kw in ((D.build_search_loaders, {"val_size": 20}), (D.build_eval_loaders, {})):
        torch_x, torch_y = epoch(build(cfg(cifar_root, "torch", **kw), 8, 0, 1, "cpu").val)
        ffcv_x, ffcv_y = epoch(build(cfg(cifar_root, "ffcv", **kw), 8, 0, 1, "cpu").val)
        assert torch.equal(torch_y, ffcv_y) and torch.equal(torch_x, ffcv_x)
        assert torch.allclose(torch_x.mean((0, 2, 3)), ffcv_x.mean((0, 2, 3)))  # per-channel statistics
    assert len(torch_y) == TEST


def decode(x: torch.Tensor, table: np.ndarray) -> np.ndarray:
    """Normalised NCHW floats back to uint8 NHWC pixels (table rows are v -> (v - mean) / std)."""
    scale = table[1] - table[0]
    return np.rint((x.permute(0, 2, 3, 1).numpy() - table[0]) / scale).astype(np.int64)


SEARCH_FILL = get_dataset("cifar100").normalisation(search=True).fill()
EVAL_FILL = get_dataset("cifar100").normalisation(search=False).fill()


def read_augmentation(image: np.ndarray, label: int, fill, inside: bool) -> tuple[bool, int, int]:
    """(flipped, dy, dx) of one augmented coordinate image; asserts that every pixel is the
    shifted (maybe mirrored) source, black outside it, or inside one cutout square: exactly
    8 x 8 with `inside`, at most 8 x 8 (clipped at the border) without."""
    filled = (image == fill).all(-1)
    ys, xs = np.nonzero(filled)
    assert filled.any() and filled[ys.min():ys.max() + 1, xs.min():xs.max() + 1].all()
    if inside:
        assert ys.max() - ys.min() == 7 and xs.max() - xs.min() == 7
    else:
        assert ys.max() - ys.min() < 8 and xs.max() - xs.min() < 8
    black = (image == 0).all(-1) & ~filled
    content = ~black & ~filled
    assert (image[content][:, 2] == 50 + 2 * label).all()
    y, x = np.nonzero(content)
    src_y, src_x = image[content][:, 0] // 8, image[content][:, 1] // 8
    dys, plain, mirrored = np.unique(src_y - y), np.unique(src_x - x), np.unique(src_x + x)
    assert len(dys) == 1 and (len(plain) == 1 or len(mirrored) == 1)
    flipped = len(plain) != 1
    dy, dx = int(dys[0]), int(31 - mirrored[0] if flipped else plain[0])
    rows, cols = np.mgrid[0:32, 0:32]
    inside = (rows + dy >= 0) & (rows + dy < 32) & (cols + dx >= 0) & (cols + dx < 32)
    assert np.array_equal(content, inside & ~filled) and np.array_equal(black, ~inside & ~filled)
    return flipped, dy, dx


@pytest.mark.parametrize("backend", BACKENDS)
def test_search_augmentation_is_flip_translate_2_and_cutout_8(cifar_root, backend):
    data = D.build_search_loaders(cfg(cifar_root, backend, val_size=20, cutout=8), 16, 0, 1, "cpu")
    table = data.train_full.finish.table
    seen = []
    for n in range(2):
        x, y = epoch(data.train_full, n)
        pixels = decode(x, table)
        seen += [read_augmentation(pixels[i], int(y[i]), SEARCH_FILL, inside=True) for i in range(len(y))]
    flips, dys, dxs = zip(*seen)
    assert 0.25 < np.mean(flips) < 0.75
    assert set(dys) <= set(range(-2, 3)) and len(set(dys)) >= 4 and set(dxs) <= set(range(-2, 3))


@pytest.mark.parametrize("backend", BACKENDS)
def test_eval_augmentation_translates_up_to_4_px(cifar_root, backend):
    data = D.build_eval_loaders(cfg(cifar_root, backend, cutout=4), 20, 0, 1, "cpu")
    x, y = epoch(data.train, 0)
    pixels = decode(x, data.train.finish.table)
    shifts = [read_augmentation(pixels[i], int(y[i]), EVAL_FILL, inside=False)[1:] for i in range(len(y))]
    assert {abs(v) for s in shifts for v in s} <= set(range(5)) and max(abs(v) for s in shifts for v in s) >= 3


# ---------------------------------------------------------------- splits, order, shards
def test_held_out_split_is_disjoint_from_training_and_fixed_per_seed(cifar_root):
    data = D.build_search_loaders(cfg(cifar_root, val_size=20, split_seed=1), 16, 0, 1, "cpu")
    val = labels(data.val)
    train = labels(data.train_full, 0)
    assert len(val) == 20 and len(train) == 80 and not set(val) & set(train)
    assert set(val) | set(train) == set(range(TRAIN))
    assert labels(D.build_search_loaders(cfg(cifar_root, val_size=20, split_seed=1), 16, 0, 1, "cpu").val) == val
    assert labels(D.build_search_loaders(cfg(cifar_root, val_size=20, split_seed=2), 16, 0, 1, "cpu").val) != val
    test = D.build_search_loaders(cfg(cifar_root, val_protocol="test"), 16, 0, 1, "cpu")
    trained = labels(test.train_full, 0)
    assert labels(test.val) == list(range(TEST)) and len(set(trained)) == len(trained) == 96  # 100 // 16 batches


def test_train_subset_takes_the_first_images_after_the_split(cifar_root):
    full = D.build_search_loaders(cfg(cifar_root, val_size=20), 10, 0, 1, "cpu")
    subset = D.build_search_loaders(cfg(cifar_root, val_size=20, train_subset=30), 10, 0, 1, "cpu")
    kept = sorted(set(range(TRAIN)) - set(labels(full.val)))[:30]
    assert sorted(labels(subset.train_full, 0)) == kept and labels(subset.val) == labels(full.val)


def test_shards_of_two_ranks_are_disjoint_and_cover_the_data(cifar_root):
    ranks = [D.build_eval_loaders(cfg(cifar_root), 8, r, 2, "cpu") for r in range(2)]
    val = [labels(r.val) for r in ranks]
    assert not set(val[0]) & set(val[1]) and sorted(val[0] + val[1]) == list(range(TEST))
    train = [labels(r.train, 3) for r in ranks]  # 50 images per rank, 6 batches of 8
    assert len(train[0]) == len(train[1]) == 48 and not set(train[0]) & set(train[1])
    search = [D.build_search_loaders(cfg(cifar_root, val_size=20), 16, r, 2, "cpu") for r in range(2)]
    shards = [labels(s.train_shard, 0) for s in search]
    assert search[0].train_shard.batch_size == 8 and len(shards[0]) == len(shards[1]) == 40
    assert not set(shards[0]) & set(shards[1]) and set(shards[0] + shards[1]) == set(labels(search[0].train_full, 0))


@needs_ffcv
def test_ffcv_shards_are_the_torch_shards(cifar_root):
    for rank in range(2):
        built = {b: D.build_eval_loaders(cfg(cifar_root, b), 8, rank, 2, "cpu") for b in ("torch", "ffcv")}
        assert labels(built["ffcv"].val) == labels(built["torch"].val)
    assert labels(built["ffcv"].train, 3) == labels(built["torch"].train, 3)


def test_uneven_evaluation_shards_keep_every_image_once(cifar_root):
    shards = [labels(D.build_eval_loaders(cfg(cifar_root), 4, r, 4, "cpu").val) for r in range(4)]
    assert [len(s) for s in shards] == [8, 8, 7, 7] and sorted(sum(shards, [])) == list(range(TEST))


# ---------------------------------------------------------------- the last partial training batch
@pytest.mark.parametrize("images, batch, world, kept, dropped", [
    (50_000, 128, 1, 391, 390),  # CIFAR at batch 128: the original's 391 steps an epoch
    (50_000, 32, 4, 391, 390),  # the same global batch over 4 ranks
    (1_281_167, 128, 1, 10_010, 10_009),  # ImageNet
    (1_281_167, 32, 4, 10_010, 10_009),
])
def test_steps_per_epoch_with_and_without_the_last_partial_batch(images, batch, world, kept, dropped):
    from nas.data.base import CifarAugment, LoaderSpec

    def steps(drop_last):
        specs = [LoaderSpec("train", np.arange(images), batch, shuffle=True, drop_last=drop_last,
                            augment=CifarAugment(), rank=r, world_size=world, even=True) for r in range(world)]
        counts = {s.num_batches() for s in specs}
        assert len(counts) == 1  # every rank takes the same number of steps
        return counts.pop()

    assert (steps(False), steps(True)) == (kept, dropped)


@pytest.mark.parametrize("backend", BACKENDS)
def test_without_drop_last_an_epoch_ends_with_its_partial_batch(cifar_root, backend):
    kept = D.build_eval_loaders(cfg(cifar_root, backend), 16, 0, 1, "cpu", drop_last=False).train
    sizes = [len(y) for _, y in kept]
    assert len(kept) == len(sizes) == 7 and sizes[-1] == 4 and sum(sizes) == TRAIN
    assert sorted(labels(kept, 2)) == list(range(TRAIN))  # every image once
    dropped = D.build_eval_loaders(cfg(cifar_root, backend), 16, 0, 1, "cpu").train
    assert len(dropped) == len(list(dropped)) == 6


@pytest.mark.parametrize("backend", BACKENDS)
def test_kept_last_batches_pad_the_shards_to_one_step_count(cifar_root, backend):
    """100 images over 3 ranks: 34 each (two images of the epoch's order repeated, with their
    augmentation, as torch's DistributedSampler pads), so every rank takes 5 steps of 8."""
    ranks = [D.build_eval_loaders(cfg(cifar_root, backend, cutout=8), 8, r, 3, "cpu", drop_last=False).train
             for r in range(3)]
    passes = [epoch(r, 1) for r in ranks]
    assert [len(r) for r in ranks] == [5, 5, 5] and [len(y) for _, y in passes] == [34, 34, 34]
    order = torch.stack([y for _, y in passes], 1).reshape(-1)  # the epoch's order, dealt round the ranks
    assert sorted(order[:TRAIN].tolist()) == list(range(TRAIN)) and order[TRAIN:].tolist() == order[:2].tolist()
    images = torch.stack([x for x, _ in passes], 1).reshape(-1, *passes[0][0].shape[1:])
    assert torch.equal(images[TRAIN:], images[:2])  # a repeated image is augmented alike


def test_a_last_batch_of_one_image_is_dropped_with_a_warning(cifar_root, caplog):
    with caplog.at_level(logging.WARNING, logger="nas.data.loaders"):
        train = D.build_eval_loaders(cfg(cifar_root), 33, 0, 1, "cpu", drop_last=False).train  # 100 = 3 x 33 + 1
    assert len(train) == len(list(train)) == 3
    assert "would hold 1 image per rank" in caplog.text


@pytest.mark.parametrize("backend", BACKENDS)
def test_set_epoch_fixes_order_and_augmentation(cifar_root, backend):
    config = cfg(cifar_root, backend, val_size=20, cutout=8)
    first = D.build_search_loaders(config, 16, 0, 1, "cpu", seed=5).train_full
    x3, y3 = epoch(first, 3)
    x4, y4 = epoch(first, 4)
    assert not torch.equal(y3, y4)
    again = epoch(first, 3)  # the same loader, and a fresh one as after a crash, with more workers
    resumed = epoch(D.build_search_loaders(D.DataConfig(**{**config.__dict__, "workers": config.workers + 1}), 16, 0,
                                           1, "cpu", seed=5).train_full, 3)
    for xs, ys in (again, resumed):
        assert torch.equal(ys, y3) and torch.equal(xs, x3)
    other_seed = epoch(D.build_search_loaders(config, 16, 0, 1, "cpu", seed=6).train_full, 3)
    assert not torch.equal(other_seed[1], y3)


@needs_ffcv
def test_ffcv_training_batches_are_the_torch_batches(cifar_root):
    """Order and every flip, shift and cutout come from the plan's seeds on both loaders."""
    for build, kw, split in ((D.build_search_loaders, {"val_size": 20}, "train_full"), (D.build_eval_loaders, {}, "train")):
        built = {b: getattr(build(cfg(cifar_root, b, cutout=8, **kw), 16, 0, 1, "cpu", seed=4), split)
                 for b in ("torch", "ffcv")}
        for n in (0, 5):
            (tx, ty), (fx, fy) = epoch(built["torch"], n), epoch(built["ffcv"], n)
            assert torch.equal(ty, fy) and torch.equal(tx, fx)


@needs_ffcv
def test_ffcv_order_matches_the_torch_order_for_the_same_seed_and_epoch(cifar_root):
    built = {b: D.build_search_loaders(cfg(cifar_root, b, val_size=20), 16, 0, 1, "cpu", seed=2)
             for b in ("torch", "ffcv")}
    for n in (0, 7):
        assert labels(built["ffcv"].train_full, n) == labels(built["torch"].train_full, n)
    from ffcv.loader.epoch_iterator import EpochIterator

    ffcv = built["ffcv"].train_full
    ffcv.set_epoch(7)
    next(iter(ffcv))  # an abandoned pass must not disturb the next one, nor leave its reader thread
    # (a reader thread alive at exit, in numba code, aborted the process: "terminate called ...")
    assert not [t for t in threading.enumerate() if isinstance(t, EpochIterator)]
    assert labels(ffcv, 7) == labels(built["torch"].train_full, 7)


# ---------------------------------------------------------------- backend choice
@needs_ffcv
def test_auto_uses_ffcv_when_the_beton_files_exist(cifar_root):
    threads = torch.get_num_threads()
    data = D.build_search_loaders(cfg(cifar_root, "auto", val_size=20, workers=64), 16, 0, 1, "cpu")  # > cores
    assert data.backend == "ffcv" and len(labels(data.val)) == 20
    assert torch.get_num_threads() == threads  # FFCV sets torch's thread count; the loader puts it back


def test_auto_falls_back_to_torch_with_one_log_line(cifar_root, tmp_path, caplog):
    (tmp_path / "cifar-100-python").symlink_to(cifar_root / "cifar-100-python")
    with caplog.at_level(logging.INFO, logger="nas.data.loaders"):
        data = D.build_search_loaders(cfg(tmp_path, "auto", val_size=20), 16, 0, 1, "cpu")
    assert data.backend == "torch"
    lines = [r.getMessage() for r in caplog.records if r.name == "nas.data.loaders"]
    assert len(lines) == 1 and "torch" in lines[0] and ("cifar_train.beton" in lines[0] or "FFCV" in lines[0])


def test_explicit_ffcv_without_ffcv_is_an_error(cifar_root, monkeypatch):
    monkeypatch.setattr(D, "ffcv_missing_reason", lambda: "ModuleNotFoundError: No module named 'ffcv'")
    with pytest.raises(UserError, match="FFCV does not import"):
        D.build_search_loaders(cfg(cifar_root, "ffcv", val_size=20), 16, 0, 1, "cpu")


# ---------------------------------------------------------------- the original's constants
def test_original_constants_normalise_cifar100_as_the_original_did(cifar_root):
    """The original's search loader had no CIFAR-100 branch (CIFAR-10 search constants) and its
    cutout fill truncated the mean; its CIFAR-100 evaluation used other digits than DARTS's."""
    c100, c10 = get_dataset("cifar100"), get_dataset("cifar10")
    assert c100.normalisation(search=True, constants="original") == c10.normalisation(search=True)
    assert c100.normalisation(search=False, constants="original").mean == (0.5071, 0.4867, 0.4408)
    assert c100.normalisation(search=False, constants="original").std == (0.2675, 0.2565, 0.2761)
    assert c10.normalisation(search=True).fill(truncate=True) == (125, 122, 113)
    assert c10.normalisation(search=True).fill() == (125, 123, 114)
    for build, search in ((D.build_search_loaders, True), (D.build_eval_loaders, False)):
        raw = {}
        for constants in ("dataset", "original"):
            kw = {"val_size": 20} if search else {}
            data = build(cfg(cifar_root, norm_constants=constants, **kw), 16, 0, 1, "cpu")
            norm = c100.normalisation(search=search, constants=constants)
            x, _ = epoch(data.val)
            raw[constants] = x * torch.tensor(norm.std).view(1, 3, 1, 1) + torch.tensor(norm.mean).view(1, 3, 1, 1)
        assert torch.allclose(raw["dataset"], raw["original"], atol=1e-5)  # the same pixels, other constants


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("kw, match", [
    ({"dataset": "mnist"}, "dataset 'mnist'"), ({"loader": "dali"}, "loader 'dali'"),
    ({"val_protocol": "train"}, "val_protocol"), ({"val_size": 0}, "val_size 0"), ({"workers": -1}, "workers -1"),
    ({"train_subset": 0}, "train_subset 0"), ({"cutout": -2}, "cutout -2"),
    ({"norm_constants": "imagenet"}, "norm_constants 'imagenet'")])
def test_bad_config_values(kw, match):
    with pytest.raises(UserError, match=match):
        D.DataConfig(root="x", **kw)


@pytest.mark.parametrize("kw, batch, world, match", [
    ({"val_size": 100}, 16, 1, "val_size 100 must be smaller than the 100 training images"),
    ({"val_size": 20, "train_subset": 81}, 16, 1, "train_subset 81 is larger than the 80"),
    ({"val_size": 20}, 128, 1, "fewer than one batch of 128"),
    ({"val_size": 20}, 15, 2, "not a multiple of the world size 2"),
    ({"val_size": 20}, 16, 0, "world size 0"),
    ({"dataset": "imagenet"}, 16, 1, r"32x32 data sets \(cifar10, cifar100, digits\) or on a root written by .*, not imagenet")])
def test_bad_search_requests(cifar_root, kw, batch, world, match):
    with pytest.raises(UserError, match=match):
        D.build_search_loaders(cfg(cifar_root, **kw), batch, 0, world, "cpu")


@pytest.mark.parametrize("backend, match", [("torch", "missing CIFAR directory .*cifar-100-python"),
                                            pytest.param("ffcv", "missing .*cifar_train.beton", marks=needs_ffcv)])
def test_missing_data_names_the_path_and_layout(tmp_path, backend, match):
    with pytest.raises(UserError, match=match):
        D.build_eval_loaders(cfg(tmp_path / "nowhere", backend), 8, 0, 1, "cpu")


def test_workers_above_the_cores_are_capped_with_one_warning(cifar_root, monkeypatch, caplog):
    monkeypatch.setattr(D, "available_cores", lambda: 2)
    monkeypatch.setattr(logging.getLogger("nas"), "propagate", True)  # to caplog, whatever set up logging before
    with caplog.at_level(logging.WARNING, logger="nas"):
        loaders = D.build_eval_loaders(cfg(cifar_root, workers=64), 8, 0, 1, "cpu")
    assert loaders.train._loader.num_workers == 2 and loaders.val._loader.num_workers == 2
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "--workers 64: more than the 2 cores this process may use; using 2"]


def test_unreadable_data_names_the_file_and_the_reason(cifar_root, monkeypatch):
    """Root reads any file: the system's refusal (EACCES) is injected where each loader opens its data."""
    import errno
    import os

    from nas.data import beton, raw

    def refuse(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(raw, "open_regular", refuse)  # where the torch loader opens its pickles
    with pytest.raises(UserError, match=f"^cannot read {cifar_root / 'cifar-100-python' / 'train'}: Permission denied$"):
        D.build_eval_loaders(cfg(cifar_root, "torch"), 8, 0, 1, "cpu")
    if FFCV:
        monkeypatch.setattr(beton, "Reader", refuse)
        with pytest.raises(UserError, match=f"^cannot read {cifar_root / 'cifar_train.beton'}: Permission denied$"):
            D.build_eval_loaders(cfg(cifar_root, "ffcv"), 8, 0, 1, "cpu")


def test_a_crafted_cifar_batch_runs_no_code_in_the_torch_loader(tmp_path):
    import pickle

    from tests.helpers import ShellCommand

    raw = tmp_path / "cifar-100-python"
    cifar100_dir(raw, coordinate_images(np.arange(4)), np.arange(4), coordinate_images(np.arange(2)), np.arange(2))
    crafted = {b"data": np.zeros((1, 3072), np.uint8), b"fine_labels": [ShellCommand(tmp_path / "pwned")]}
    (raw / "train").write_bytes(pickle.dumps(crafted, protocol=2))
    with pytest.raises(UserError, match=f"{raw / 'train'} is not a CIFAR pickle batch .*posix.system object.*refused"):
        D.build_eval_loaders(cfg(tmp_path, "torch"), 8, 0, 1, "cpu")
    assert not (tmp_path / "pwned").exists()


@needs_ffcv
def test_unusable_beton_files(cifar_root, tmp_path):
    from ffcv.fields import IntField, RGBImageField
    from ffcv.writer import DatasetWriter

    def beton(path, fields, images):
        DatasetWriter(str(path), fields, num_workers=1).from_indexed_dataset([(im, 0) for im in images])

    cases = tmp_path / "garbage"
    cases.mkdir()
    (cases / "cifar_train.beton").write_bytes(b"not a beton" * 10)
    (cases / "cifar_test.beton").symlink_to(cifar_root / "cifar_test.beton")
    with pytest.raises(UserError, match="not a readable FFCV .beton"):
        D.build_eval_loaders(cfg(cases, "ffcv"), 8, 0, 1, "cpu")
    (cases / "cifar_train.beton").unlink()
    beton(cases / "cifar_train.beton", {"picture": RGBImageField(), "y": IntField()},
          np.zeros((4, 32, 32, 3), np.uint8))
    with pytest.raises(UserError, match="has fields picture .*expected image"):
        D.build_eval_loaders(cfg(cases, "ffcv"), 8, 0, 1, "cpu")
    (cases / "cifar_train.beton").unlink()
    beton(cases / "cifar_train.beton", {"image": RGBImageField(), "label": IntField()},
          np.zeros((4, 16, 16, 3), np.uint8))
    with pytest.raises(UserError, match="holds 16x16 images .*expects 32x32"):
        D.build_eval_loaders(cfg(cases, "ffcv"), 8, 0, 1, "cpu")
    with pytest.raises(UserError, match="holds label 99; expected labels 0..9"):
        D.build_eval_loaders(cfg(cifar_root, "ffcv", dataset="cifar10"), 8, 0, 1, "cpu")


def test_layouts_name_the_raw_directories():
    assert DATASETS["cifar10"].raw.dirname == DATASETS["digits"].raw.dirname == "cifar-10-batches-py"
    assert DATASETS["cifar100"].raw.dirname == "cifar-100-python"


# ---------------------------------------------------------------- ImageNet
@pytest.fixture(scope="module")
def imagenet_root(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("imagenet")
    src = imagenet_dir(tmp / "src")
    if not FFCV:
        return src
    from nas.data.writer import write_imagenet

    write_imagenet(src, tmp / "root", max_side=500, quality=90, workers=1)
    return tmp / "root"


@pytest.mark.parametrize("backend", BACKENDS)
def test_imagenet_validation_centre_crop(imagenet_root, backend):
    data = D.build_eval_loaders(cfg(imagenet_root, backend, dataset="imagenet"), 4, 0, 1, "cpu")
    x, y = epoch(data.val)
    assert x.shape == (6, 3, 224, 224) and y.tolist() == [0, 0, 1, 1, 2, 2]
    assert (data.num_classes, data.image_size) == (3, 224)


@needs_ffcv
def test_imagenet_validation_statistics_match_across_backends(imagenet_root):
    stats = {}
    for backend in ("torch", "ffcv"):
        x, y = epoch(D.build_eval_loaders(cfg(imagenet_root, backend, dataset="imagenet"), 4, 0, 1, "cpu").val)
        stats[backend] = (y, x.mean((2, 3)), x.std((0, 2, 3)))
    assert torch.equal(stats["torch"][0], stats["ffcv"][0])
    # JPEG re-encoding (quality 90) and different resamplers: close, not equal
    assert torch.allclose(stats["torch"][1], stats["ffcv"][1], atol=0.1)
    assert torch.allclose(stats["torch"][2], stats["ffcv"][2], atol=0.1)


def test_imagenet_training_crops_are_seeded_per_epoch_on_the_torch_loader(imagenet_root):
    train = D.build_eval_loaders(cfg(imagenet_root, "torch", dataset="imagenet"), 3, 0, 1, "cpu").train
    x1, y1 = epoch(train, 2)
    x2, y2 = epoch(train, 2)
    assert x1.shape == (9, 3, 224, 224) and torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(epoch(train, 3)[0], x1)


@pytest.mark.slow
@needs_ffcv
def test_imagenet_ffcv_training_batches(imagenet_root):
    train = D.build_eval_loaders(cfg(imagenet_root, "ffcv", dataset="imagenet"), 3, 0, 1, "cpu").train
    x, y = epoch(train, 0)
    assert x.shape == (9, 3, 224, 224) and sorted(y.tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
