"""Files that show a generator's latent space: interpolation GIFs and strips, arithmetic figures, class sweeps."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from .errors import ConfigError
from .images import MIN_TILE, make_grid, save_gif, save_grid, to_uint8, upscale
from .latent import (
    ArithmeticResult,
    class_sweep,
    code_path,
    code_sweep,
    decode,
    interpolation,
    latent_arithmetic,
)
from .models import Generator

GIF_MIN_SIZE = 64  # GIF frames are upscaled (nearest) to at least this many pixels a side
PADDING = 2


def write_interpolation(generator: Generator, z: torch.Tensor, out: str | Path, frames: int = 24,
                        method: str = "slerp", loop: bool | None = None, labels: Sequence[int] | None = None,
                        fps: float = 12.0, code: int | None = None) -> Path:
    """A path through latents ``z`` [K, D] as an animated ``.gif`` or a one-row ``.png`` strip.

    ``loop`` (default: True for a GIF, False for a strip) returns to the first latent. ``labels``: see
    ``latent.interpolation``. ``code``: walk that InfoGAN code of the one latent ``z`` instead
    (``latent.code_path``), drawn as ``labels[0]`` for a generator that also takes a class.
    """
    out = Path(out)
    if out.suffix not in (".gif", ".png"):
        raise ConfigError(f"--out: {out} must end in .gif (animation) or .png (strip)")
    if not fps > 0:
        raise ConfigError(f"--fps must be positive, got {fps}")
    loop = out.suffix == ".gif" if loop is None else loop
    if code is not None:
        if labels and len(labels) > 1:
            raise ConfigError("--code walks one code with the class held: give --label K, not --labels")
        images = decode(generator, code_path(generator, z, code, frames, loop), labels[0] if labels else None)
    else:
        images = interpolation(generator, z, frames, method, loop, labels)
    if out.suffix == ".gif":
        return save_gif(list(upscale(to_uint8(images), GIF_MIN_SIZE)), out, duration_ms=round(1000 / fps))
    return save_grid(images, out, nrow=frames)


def _sign_tile(draw: ImageDraw.ImageDraw, x: int, y: int, size: int, sign: str) -> None:
    """Draw +, − or = centred in the tile at (x, y): plain bars, so no font is needed."""
    cx, cy, arm, half = x + size // 2, y + size // 2, max(2, size // 4), max(1, size // 16)
    bars = {"+": [(0, 0, arm, half), (0, 0, half, arm)], "-": [(0, 0, arm, half)],
            "=": [(0, -3 * half, arm, half), (0, 3 * half, arm, half)]}[sign]
    for dx, dy, w, h in bars:
        draw.rectangle((cx + dx - w, cy + dy - h, cx + dx + w - 1, cy + dy + h - 1), fill=(255, 255, 255))


def arithmetic_figure(result: ArithmeticResult) -> Image.Image:
    """One row per group: its sign, the image of its mean z, then its exemplars; a last row with "=", the
    result, then its perturbations. The column of means reads top to bottom as the sum that was computed."""
    exemplars = [upscale(to_uint8(e), MIN_TILE) for e in result.exemplars]
    means, outcome = upscale(to_uint8(result.means), MIN_TILE), upscale(to_uint8(result.result), MIN_TILE)
    h, w, c = outcome.shape[1:]
    rows, cols = len(exemplars) + 1, max(max(len(e) for e in exemplars), len(outcome) - 1, 1)
    left = np.zeros((rows, 2, h, w, c), np.uint8)  # sign, mean (or result)
    right = np.zeros((rows, cols, h, w, c), np.uint8)  # exemplars (or perturbations)
    for r, ex in enumerate(exemplars):
        left[r, 1], right[r, :len(ex)] = means[r], ex
    left[-1, 1], right[-1, :len(outcome) - 1] = outcome[0], outcome[1:]
    gap = np.zeros((rows * (h + PADDING) + PADDING, w // 2, c), np.uint8)  # sets the means column apart
    grid = np.concatenate([make_grid(left.reshape(-1, h, w, c), 2, PADDING), gap,
                           make_grid(right.reshape(-1, h, w, c), cols, PADDING)], axis=1)
    img = Image.fromarray(grid[..., 0] if c == 1 else grid).convert("RGB")
    draw = ImageDraw.Draw(img)
    for r, sign in enumerate([("+" if s > 0 else "-") for s in result.signs] + ["="]):
        _sign_tile(draw, PADDING, PADDING + r * (h + PADDING), w, sign)
    return img


def write_arithmetic(generator: Generator, groups: Sequence[tuple[int, torch.Tensor]], out: str | Path,
                     label: int | None = None, variations: int = 8, scale: float = 0.25, seed: int = 0) -> Path:
    """The arithmetic figure as a PNG, and ``<name>.latents.npz`` with the result's z then its perturbations'."""
    out = Path(out)
    if out.suffix != ".png":
        raise ConfigError(f"--out: {out} must end in .png")
    result = latent_arithmetic(generator, groups, label, variations, scale, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    arithmetic_figure(result).save(out)
    np.savez(out.with_suffix(".latents.npz"), z=result.z.cpu().numpy())
    return out


def write_sweep(generator: Generator, z: torch.Tensor, out: str | Path, classes: Sequence[int] | None = None) -> Path:
    """A PNG grid with one row per latent and one column per class."""
    out = Path(out)
    if out.suffix != ".png":
        raise ConfigError(f"--out: {out} must end in .png")
    images = class_sweep(generator, z, classes)
    return save_grid(images, out, nrow=len(images) // len(z))


def write_code_sweep(generator: Generator, z: torch.Tensor, out: str | Path, code: int,
                     label: int | None = None) -> Path:
    """A PNG grid with one row per latent and one column per value of InfoGAN code ``code``."""
    out = Path(out)
    if out.suffix != ".png":
        raise ConfigError(f"--out: {out} must end in .png")
    images = code_sweep(generator, z, code, label=label)
    return save_grid(images, out, nrow=len(images) // len(z))


__all__ = ["arithmetic_figure", "write_arithmetic", "write_code_sweep", "write_interpolation", "write_sweep"]
