"""Projection: the latent (and, for a generator that takes one, the label) that reproduces a given image.

It follows StyleGAN2-ADA's projector (Karras et al. 2020, ``projector.py``): Adam on the latent from the
prior's mean, with a learning rate that ramps up over the first 5 % of the steps and down along a cosine over the
last 25 %, and noise added to the latent that starts at 5 % of the latent's spread and fades out by 75 % of the
steps (its regularisation of the synthesis noise buffers has nothing to act on here: ganforge's generators
have none). Its distance is LPIPS on VGG16 features, which cannot be had offline; here it is the distance in the
trained discriminator's features (every layer, pooled as ``ganforge probe`` reads them) plus the distance in
pixels. A generator that takes a label is projected under every label at once and keeps the best.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .data.decode import UNREADABLE, decode_image
from .errors import ConfigError
from .images import grid_image, pixels_to_float
from .models import Discriminator, Generator

STEPS = 300
LR = 0.1
RAMP_UP, RAMP_DOWN = 0.05, 0.25
NOISE, NOISE_RAMP = 0.05, 0.75

Progress = Callable[[int, int, float], None]  # (step, steps, loss of the best label so far)


@dataclass(frozen=True)
class Projection:
    z: torch.Tensor  # [n, latent_dim] on the CPU
    labels: torch.Tensor | None  # [n] for a generator that takes a label
    images: torch.Tensor  # [n, C, H, W] in [-1, 1]: what G makes of them
    pixel_error: torch.Tensor  # [n]: mean |difference| per pixel, in [0, 1] units
    loss: torch.Tensor  # [n]: the final loss


def _learning_rate(t: float) -> float:
    """StyleGAN2-ADA's projector schedule: linear ramp up, flat, cosine ramp down; ``t`` in [0, 1]."""
    down = 0.5 - 0.5 * math.cos(math.pi * min(1.0, (1.0 - t) / RAMP_DOWN))
    return LR * min(1.0, t / RAMP_UP) * down


def _distance(x: torch.Tensor, target: torch.Tensor, target_feats: list[torch.Tensor] | None,
              discriminator: Discriminator | None, labels: torch.Tensor | None, feature_weight: float
              ) -> torch.Tensor:
    """Per image [n]: squared pixel distance, plus the discriminator's feature distance (each layer's mean)."""
    loss = (x - target).square().flatten(1).mean(1)
    if discriminator is not None and target_feats is not None:
        for f, t in zip(_features(discriminator, x, labels), target_feats, strict=True):
            loss = loss + feature_weight * (f - t).square().mean(1)
    return loss


def _features(discriminator: Discriminator, x: torch.Tensor, labels: torch.Tensor | None) -> list[torch.Tensor]:
    """Each layer's pooled activations, scaled to unit mean square so every layer counts alike."""
    y = labels if discriminator.num_classes else None
    feats = []
    for h in discriminator.features(x, y):
        if h.ndim == 4:
            h = F.adaptive_max_pool2d(h, (min(4, h.shape[2]), min(4, h.shape[3])))
        h = h.flatten(1).float()
        feats.append(h / h.square().mean(1, keepdim=True).add(1e-8).sqrt())
    return feats


def project(generator: Generator, target: torch.Tensor, discriminator: Discriminator | None = None,
            steps: int = STEPS, feature_weight: float = 1.0, seed: int = 0, progress: Progress | None = None
            ) -> Projection:
    """Project ``target`` images (float [n, C, H, W] in [-1, 1], G's shape) into ``generator``'s latent space.

    ``discriminator`` (the run's, optional) adds its features to the distance, unless it scores packs of images
    (``--pack``), whose features describe a pack: then pixels alone. ``progress`` is called after each step.
    Deterministic for a given ``seed``.
    """
    g = generator
    if target.shape[1:] != (g.channels, g.resolution, g.resolution):
        raise ConfigError(f"project: the images are {tuple(target.shape[1:])}, the generator makes "
                          f"{(g.channels, g.resolution, g.resolution)}")
    if steps < 1:
        raise ConfigError(f"--steps must be at least 1, got {steps}")
    device, n = g.device, len(target)
    classes = g.classes if g.takes_labels else [None]
    k = len(classes)
    target = target.to(device).repeat_interleave(k, 0)  # image i under each label: rows i*k .. i*k+k-1
    labels = None if not g.takes_labels else torch.tensor(classes * n, device=device)
    packed = discriminator is not None and discriminator.pack > 1
    d = None if discriminator is None or packed else discriminator.to(device).eval().requires_grad_(False)
    with torch.no_grad():
        target_feats = _features(d, target, labels) if d is not None else None
    rng = torch.Generator(device="cpu").manual_seed(seed)
    # The prior's mean: z = 0, and each categorical code's values equally likely (continuous codes at 0).
    start = torch.zeros(1, g.latent_dim)
    for i, width in enumerate(g.codes.categorical):
        start[:, g.codes.columns(i)] = 1.0 / width
    z = start.repeat(n * k, 1).to(device).requires_grad_(True)
    spread = math.sqrt(g.z_dim)  # the RMS distance of a latent from the mean, as StyleGAN2-ADA's w_std
    opt = torch.optim.Adam([z], lr=LR, betas=(0.9, 0.999))
    g_eval = g.eval().requires_grad_(False)
    for step in range(steps):
        t = step / steps
        for group in opt.param_groups:
            group["lr"] = _learning_rate(t)
        scale = spread * NOISE * max(0.0, 1.0 - t / NOISE_RAMP) ** 2
        noise = torch.randn(z.shape, generator=rng).to(device) * scale
        loss = _distance(g_eval(z + noise, labels), target, target_feats, d, labels, feature_weight)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        if progress is not None:
            progress(step + 1, steps, float(loss.view(n, k).min(1).values.mean()))
    with torch.no_grad():
        images = g_eval(z, labels)
        final = _distance(images, target, target_feats, d, labels, feature_weight).view(n, k)
        best = final.argmin(1)  # per image, the label that reproduces it best
        rows = torch.arange(n, device=device) * k + best
        pixel = ((images[rows] - target[rows]).abs() / 2).flatten(1).mean(1)
    return Projection(z.detach()[rows].cpu(), None if labels is None else labels[rows].cpu(), images[rows].cpu(),
                      pixel.cpu(), final[torch.arange(n), best].cpu())


def write_projection(generator: Generator, discriminator: Discriminator | None, images: Sequence[Path],
                     out: str | Path, steps: int = STEPS, seed: int = 0) -> tuple[Projection, Path]:
    """Project image files; write their latents (``z``, and ``labels``) to ``out`` (an .npz that ``--z`` reads) and
    a PNG beside it: each image (left) and what the generator makes of its latent (right)."""
    out = Path(out)
    if out.suffix != ".npz":
        raise ConfigError(f"--out: {out} must end in .npz")
    target = []
    for path in images:
        try:
            target.append(decode_image(path, generator.resolution, generator.channels))
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such image file") from None
        except UNREADABLE as e:
            raise ConfigError(f"{path}: not an image ganforge can read ({type(e).__name__})") from None
    x = pixels_to_float(torch.from_numpy(np.stack(target)))
    result = project(generator, x, discriminator, steps, seed=seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"z": result.z.numpy(), **({} if result.labels is None else {"labels": result.labels.numpy()})}
    np.savez(out, **arrays)
    pairs = torch.stack([x, result.images], dim=1).flatten(0, 1)  # image, projection, image, ...
    grid_image(pairs, 2).save(out.with_suffix(".png"))
    return result, out


__all__ = ["Projection", "project", "write_projection"]
