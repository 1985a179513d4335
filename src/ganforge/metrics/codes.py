"""How much InfoGAN's codes mean: does a categorical code pick the class, does a continuous code move one property?

- A categorical code is scored as a classifier of the dataset's classes: images are drawn at each value of the
  code (noise and other codes random), the domain classifier names their class, and the code's values are
  matched one-to-one to classes (Hungarian, ``scipy.optimize.linear_sum_assignment``) to maximise agreement;
  ``code_accuracy`` is the share of images whose class is their value's match. A self-conditioned generator's
  clusters are scored alike, each cluster matched to its most common class (many clusters to a class): purity.
- A continuous code is swept over its trained range with each seed's noise and other codes held, and two
  properties of digit images are measured at each value: the slant (the shear of the ink's second moments,
  mu11 / mu02) and the stroke width (ink area over skeleton length). ``code_slant_rho`` and ``code_width_rho`` are
  the largest |Spearman rho| between value and property of any code, averaged over ``SEEDS`` seeds.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from scipy.stats import rankdata

from ..codes import CONT_RANGE
from ..images import float_to_pixels
from ..models import Generator
from .features import FeatureExtractor

SEEDS = 200  # latents per continuous code's sweep
STEPS = 9  # values of each sweep, evenly over the trained range
BATCH = 500


def slant(images: np.ndarray) -> np.ndarray:
    """Shear of each image's ink [N]: mu11 / mu02 of the intensity's second moments (x to the right, y down), so
    an upright stroke is 0 and a stroke leaning right is negative; ``images`` uint8 [N, 1, H, W]."""
    w = images[:, 0].astype(np.float64)
    h, wd = w.shape[1:]
    y, x = np.mgrid[:h, :wd]
    mass = w.sum((1, 2)).clip(min=1e-9)
    cx, cy = (w * x).sum((1, 2)) / mass, (w * y).sum((1, 2)) / mass
    dx, dy = x[None] - cx[:, None, None], y[None] - cy[:, None, None]
    return (w * dx * dy).sum((1, 2)) / (w * dy * dy).sum((1, 2)).clip(min=1e-9)


def _thin(ink: np.ndarray) -> np.ndarray:
    """Zhang and Suen's (1984) thinning of binary images [N, H, W] to one-pixel-wide skeletons."""
    img = np.pad(ink.astype(bool), ((0, 0), (1, 1), (1, 1)))
    while True:
        changed = False
        for first in (True, False):
            p = img
            # The 8 neighbours, clockwise from the top: P2 .. P9.
            n = [np.roll(np.roll(p, dy, 1), dx, 2) for dy, dx in
                 ((1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1))]
            b = sum(q.astype(np.int8) for q in n)
            a = sum(((~n[i]) & n[(i + 1) % 8]).astype(np.int8) for i in range(8))
            p2, p4, p6, p8 = n[0], n[2], n[4], n[6]
            gone = ~(p2 & p4 & p6) & ~(p4 & p6 & p8) if first else ~(p2 & p4 & p8) & ~(p2 & p6 & p8)
            remove = p & (b >= 2) & (b <= 6) & (a == 1) & gone
            if remove.any():
                img = img & ~remove
                changed = True
        if not changed:
            return img[:, 1:-1, 1:-1]


def stroke_width(images: np.ndarray, threshold: int = 128) -> np.ndarray:
    """Mean stroke width of each image's ink [N], in pixels: ink area over skeleton length."""
    ink = images[:, 0] >= threshold
    return ink.sum((1, 2)) / _thin(ink).sum((1, 2)).clip(min=1)


def _spearman_rows(props: np.ndarray) -> np.ndarray:
    """Spearman rho of each row of ``props`` [S, STEPS] with 0..STEPS-1 (NaN where a row is constant)."""
    ranks = rankdata(props, axis=1)
    x = np.arange(props.shape[1], dtype=np.float64)
    x, ranks = x - x.mean(), ranks - ranks.mean(1, keepdims=True)
    denom = np.sqrt((x * x).sum() * (ranks * ranks).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (ranks * x).sum(1) / denom, np.nan)


def _pixels(generator: Generator, z: torch.Tensor, labels: torch.Tensor | None) -> Iterator[torch.Tensor]:
    """uint8 images [B, C, H, W] on the CPU, in batches, whatever the generator's device."""
    with torch.no_grad():
        for i in range(0, len(z), BATCH):
            y = None if labels is None else labels[i:i + BATCH]
            yield float_to_pixels(generator.sample(len(z[i:i + BATCH]), labels=y, z=z[i:i + BATCH])).cpu()


def _labels(generator: Generator, n: int) -> torch.Tensor | None:
    return generator.default_labels(n) if generator.takes_labels else None


def categorical_agreement(generator: Generator, extractor: FeatureExtractor, n: int, seed: int = 0
                          ) -> float | None:
    """The first categorical code's (or a self-conditioned G's clusters') agreement with the classes the
    domain classifier reads; None when the generator has neither."""
    if generator.codes.categorical:
        k = generator.codes.categorical[0]
        per = max(1, n // k)
        z = generator.latents(per * k, seed, device="cpu")
        values = torch.arange(k).repeat_interleave(per)
        z = torch.cat([generator.with_codes(z[values == v], {0: float(v)}) for v in range(k)])
        labels, one_to_one = _labels(generator, len(z)), True
    elif generator.kind == "self-conditioned":
        labels = generator.default_labels(n)  # clusters in proportion to their sizes
        z, values, one_to_one = generator.latents(n, seed, device="cpu"), labels, False
    else:
        return None
    predicted = extractor(_pixels(generator, z, labels)).probs.argmax(1)
    values = values.numpy()
    counts = np.zeros((int(values.max()) + 1, int(predicted.max()) + 1), np.int64)
    np.add.at(counts, (values, predicted), 1)
    if not one_to_one:  # purity: each cluster counts its most common class
        return float(counts.max(1).sum() / counts.sum())
    rows, cols = linear_sum_assignment(-counts)
    return float(counts[rows, cols].sum() / counts.sum())


def continuous_correlations(generator: Generator, seeds: int = SEEDS, steps: int = STEPS, seed: int = 0
                            ) -> dict[str, float]:
    """For each continuous code, mean Spearman rho of slant and of stroke width with its value; the keys
    ``code_slant_rho``/``code_width_rho`` hold the largest |rho| of any code and ``..._code`` which code."""
    codes = generator.codes
    if not codes.continuous or generator.channels != 1:
        return {}
    base = generator.latents(seeds, seed, device="cpu")
    labels = _labels(generator, seeds)  # one per seed, held along its sweep: only the code moves
    labels = None if labels is None else labels.repeat_interleave(steps)
    values = np.linspace(*CONT_RANGE, steps)
    best: dict[str, tuple[float, int]] = {}
    out: dict[str, float] = {}
    for i in range(len(codes.categorical), codes.count):
        z = torch.stack([generator.with_codes(base, {i: float(v)}) for v in values], dim=1).flatten(0, 1)
        images = np.concatenate([b.numpy() for b in _pixels(generator, z, labels)])
        for name, prop in (("slant", slant), ("width", stroke_width)):
            rho = float(np.nanmean(_spearman_rows(prop(images).reshape(seeds, steps))))
            out[f"code{i}_{name}_rho"] = rho
            if not np.isnan(rho) and abs(rho) > best.get(name, (-1.0, 0))[0]:
                best[name] = (abs(rho), i)
    for name, (rho, i) in best.items():
        out[f"code_{name}_rho"], out[f"code_{name}_code"] = rho, i
    return out


__all__ = ["categorical_agreement", "continuous_correlations", "slant", "stroke_width"]
