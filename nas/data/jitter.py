"""ImageNet colour jitter (brightness, contrast, saturation 0.4, hue 0.2, in a random order per
image, as torchvision's ColorJitter), batched on the training device after loading: one
implementation for the FFCV and the torch loader (docs/method.md, "Evaluation").

Each image's factors and order come from its augmentation seed (LoaderSpec.plan), so a pass
is a function of (seed, epoch) on either loader.
"""
from __future__ import annotations

import numpy as np
import torch

BRIGHTNESS = CONTRAST = SATURATION = 0.4
HUE = 0.2
_GREY = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale weights


def draw_factors(seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """((n, 4) factors: brightness, contrast, saturation, hue; (n, 4) order of the four ops)
    for the images with these augmentation seeds."""
    rng = np.random.default_rng([int(s) for s in seeds])
    n = len(seeds)
    factors = np.empty((n, 4))
    for k, spread in enumerate((BRIGHTNESS, CONTRAST, SATURATION)):
        factors[:, k] = rng.uniform(max(0.0, 1 - spread), 1 + spread, n)
    factors[:, 3] = rng.uniform(-HUE, HUE, n)
    return factors, np.argsort(rng.random((n, 4)), axis=1)


def _grey(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(1)
    return (_GREY[0] * r + _GREY[1] * g + _GREY[2] * b).unsqueeze(1)


def _blend(x: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (factor * x + (1 - factor) * other).clamp_(0, 1)


def _hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the hue by `shift` (turns, per image): torchvision's HSV round trip, in the
    closed form of HSV -> RGB (fewer temporaries than its sextant table)."""
    r, g, b = x.unbind(1)
    maxc, minc = x.amax(1), x.amin(1)
    chroma = maxc - minc
    flat = chroma == 0
    s = chroma / torch.where(flat, torch.ones_like(maxc), maxc)
    div = torch.where(flat, torch.ones_like(chroma), chroma)
    h = torch.where(maxc == r, g - b, torch.where(maxc == g, 2 * chroma + b - r, 4 * chroma + r - g)) / (6 * div)
    h6 = torch.remainder(h + 1.0 + shift.view(-1, 1, 1), 1.0) * 6
    vs = maxc * s
    # channel = v - v s clamp(min(k, 4 - k), 0, 1), k = (n + 6 h) mod 6, n = 5, 3, 1 for r, g, b
    out = []
    for n in (5.0, 3.0, 1.0):
        k = torch.remainder(h6 + n, 6.0)
        out.append(maxc - vs * torch.minimum(k, 4.0 - k).clamp_(0, 1))
    return torch.stack(out, 1)


def _apply(op: int, x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    if op == 0:
        return (x * factor.view(-1, 1, 1, 1)).clamp_(0, 1)
    if op == 1:
        return _blend(x, _grey(x).mean((1, 2, 3), keepdim=True), factor.view(-1, 1, 1, 1))
    if op == 2:
        return _blend(x, _grey(x), factor.view(-1, 1, 1, 1))
    return _hue(x, factor)


def color_jitter(x: torch.Tensor, seeds: np.ndarray) -> torch.Tensor:
    """Jitter a float NCHW batch of 0..1 pixels, image i by the factors of seeds[i]."""
    factors, order = draw_factors(seeds)
    for position in range(4):
        for op in range(4):
            chosen = np.flatnonzero(order[:, position] == op)  # on the host: no device sync
            if len(chosen):
                index = torch.from_numpy(chosen).to(x.device, non_blocking=True)
                factor = torch.from_numpy(factors[chosen, op]).to(x.device, x.dtype, non_blocking=True)
                x = x.index_copy(0, index, _apply(op, x.index_select(0, index), factor))
    return x
