"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) for training on small data sets.

D sees every image, real or fake, through the same random, differentiable transforms, so it cannot
memorise the few real images while G still gets gradients through the transform. Helps most below a
few thousand images; on MNIST-sized sets it mainly regularises D.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")


def _color(x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    n = x.shape[0]

    def r(*shape: int) -> torch.Tensor:
        return torch.rand(n, *shape, device=x.device, dtype=x.dtype, generator=g)

    x = x + (r(1, 1, 1) - 0.5)  # brightness
    if x.shape[1] == 3:
        mean = x.mean(1, keepdim=True)
        x = (x - mean) * (r(1, 1, 1) * 2) + mean  # saturation
    mean = x.mean((1, 2, 3), keepdim=True)
    return (x - mean) * (r(1, 1, 1) + 0.5) + mean  # contrast


def _translation(x: torch.Tensor, g: torch.Generator | None, ratio: float = 0.125) -> torch.Tensor:
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device, generator=g)
    dx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device, generator=g)
    # Gather from a zero-padded copy: pixel (i, j) takes the value at (i + dy, j + dx).
    iy = (torch.arange(h, device=x.device)[None, :, None] + dy + 1).clamp(0, h + 1)
    ix = (torch.arange(w, device=x.device)[None, None, :] + dx + 1).clamp(0, w + 1)
    padded = F.pad(x, (1, 1, 1, 1))  # (N, C, H+2, W+2); the border is the fill value 0
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, iy, ix].permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, g: torch.Generator | None, ratio: float = 0.5) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device, generator=g)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device, generator=g)
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    inside = ((ys - cy).abs() <= ch // 2) & ((xs - cx).abs() <= cw // 2)  # (N, H, W)
    return x * (~inside)[:, None].to(x.dtype)


_OPS = {"color": _color, "translation": _translation, "cutout": _cutout}


def diff_augment(x: torch.Tensor, policies: list[str], generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply the named policies in a fixed order (color, translation, cutout), differentiably."""
    for name in POLICIES:
        if name in policies:
            x = _OPS[name](x, generator)
    return x
