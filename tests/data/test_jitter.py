"""The ImageNet colour jitter (nas/data/jitter.py): torchvision's operations, per image, on
both loader paths."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from nas.data import jitter as J
from nas.data import loaders as D

FFCV = D.ffcv_missing_reason() is None
BACKENDS = ["torch", pytest.param("ffcv", marks=pytest.mark.skipif(not FFCV, reason="FFCV does not import here"))]
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # see test_loaders.py
COLOUR = (170, 90, 40)  # saturated, so that every one of the four operations changes it


@pytest.mark.parametrize("op, name, factor", [(0, "adjust_brightness", 1.3), (1, "adjust_contrast", 0.7),
                                              (2, "adjust_saturation", 1.35), (3, "adjust_hue", -0.15),
                                              (3, "adjust_hue", 0.2)])
def test_each_operation_is_torchvisions(op, name, factor):
    import torchvision.transforms.functional as F

    x = torch.rand(2, 3, 9, 11, generator=torch.Generator().manual_seed(op))
    ours = J._apply(op, x, torch.full((2,), factor))
    theirs = torch.stack([getattr(F, name)(image, factor) for image in x])
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_factors_are_per_image_in_range_and_fixed_by_the_seeds():
    seeds = np.arange(1000, 1064)
    factors, order = J.draw_factors(seeds)
    assert ((factors[:, :3] >= 0.6) & (factors[:, :3] <= 1.4)).all() and (np.abs(factors[:, 3]) <= 0.2).all()
    assert len(np.unique(factors[:, 0])) == 64 and len({tuple(o) for o in order}) > 10
    assert (np.sort(order, axis=1) == np.arange(4)).all()
    again, order_again = J.draw_factors(seeds)
    assert np.array_equal(again, factors) and np.array_equal(order, order_again)
    assert not np.array_equal(J.draw_factors(seeds + 1)[0], factors)


@pytest.fixture(scope="module")
def uniform_imagenet(tmp_path_factory):
    """Class folders of one-colour JPEGs: a random resized crop and a flip leave such an image
    as it is, so the training batches differ from image to image only by the jitter."""
    from PIL import Image

    tmp = tmp_path_factory.mktemp("uniform")
    for split, count in (("train", 4), ("val", 1)):
        for c in ("n01", "n02"):
            (tmp / "src" / split / c).mkdir(parents=True)
            for i in range(count):
                Image.new("RGB", (48 + 8 * i, 40), COLOUR).save(tmp / "src" / split / c / f"{i}.JPEG", quality=95)
    if not FFCV:
        return tmp / "src"
    from nas.data.writer import write_imagenet

    write_imagenet(tmp / "src", tmp / "root", max_side=64, quality=95, workers=1)
    return tmp / "root"


def training_batch(root, backend, seed, epoch=0):
    config = D.DataConfig(root=str(root), dataset="imagenet", loader=backend, workers=0 if backend == "torch" else 1)
    train = D.build_eval_loaders(config, 8, 0, 1, "cpu", seed=seed).train
    train.set_epoch(epoch)
    return next(iter(train))[0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_training_images_are_jittered_one_by_one_on_both_loaders(uniform_imagenet, backend):
    x = training_batch(uniform_imagenet, backend, seed=3)
    colours = x.mean((2, 3))
    assert x.shape == (8, 3, 224, 224)
    assert (x.std((2, 3)) < 0.02).all()  # each image stays one colour ...
    assert len({tuple(c) for c in colours.round(decimals=3).tolist()}) == 8  # ... of its own
    assert torch.equal(training_batch(uniform_imagenet, backend, seed=3), x)  # a function of (seed, epoch)
    assert not torch.equal(training_batch(uniform_imagenet, backend, seed=3, epoch=1), x)
    assert not torch.equal(training_batch(uniform_imagenet, backend, seed=4), x)


@pytest.mark.parametrize("backend", BACKENDS)
def test_validation_images_are_not_jittered(uniform_imagenet, backend):
    config = D.DataConfig(root=str(uniform_imagenet), dataset="imagenet", loader=backend,
                          workers=0 if backend == "torch" else 1)
    x, _ = next(iter(D.build_eval_loaders(config, 2, 0, 1, "cpu").val))
    assert torch.allclose(x[0], x[1], atol=0.02)
