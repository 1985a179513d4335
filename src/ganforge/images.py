"""Images at the edges: [-1, 1] float NCHW tensors <-> uint8 NHWC arrays, grids, PNG and GIF files."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from .files import atomic_path

MIN_TILE = 32  # tiles smaller than this are upscaled (nearest) so 8×8 digits stay visible


def pixels_to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels 0..255 -> float32 in [-1, 1], the library's image range (any layout)."""
    return x.float().div_(127.5).sub_(1.0)


def float_to_pixels(x: torch.Tensor) -> torch.Tensor:
    """float in [-1, 1] -> uint8 pixels 0..255, clamped and rounded as image files store them (any layout)."""
    return x.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """float [-1, 1] [N, C, H, W] -> uint8 [N, H, W, C] (rounded, clamped)."""
    return float_to_pixels(images).permute(0, 2, 3, 1).cpu().numpy()


def _pil(array: np.ndarray) -> Image.Image:
    """uint8 [H, W, C] with C in {1, 3} -> PIL image."""
    return Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)


def make_grid(images: np.ndarray, nrow: int | None = None, padding: int = 2, pad_value: int = 0) -> np.ndarray:
    """Tile uint8 [N, H, W, C] into one uint8 [H', W', C] image, ``nrow`` tiles per row."""
    n, h, w, c = images.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / nrow)
    grid = np.full((rows * (h + padding) + padding, nrow * (w + padding) + padding, c), pad_value, np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        y, x = padding + r * (h + padding), padding + col * (w + padding)
        grid[y:y + h, x:x + w] = images[i]
    return grid


def upscale(images: np.ndarray, min_size: int = MIN_TILE) -> np.ndarray:
    """Nearest-neighbour upscale of uint8 [N, H, W, C] by an integer factor so tiles are >= min_size."""
    factor = max(1, math.ceil(min_size / images.shape[1]))
    return images if factor == 1 else images.repeat(factor, axis=1).repeat(factor, axis=2)


def grid_image(images: torch.Tensor | np.ndarray, nrow: int | None = None, numbered: bool = False,
               numbers: Sequence[int] | None = None) -> Image.Image:
    """A grid as a PIL image; ``numbered`` prints each tile's index (or its entry of ``numbers``) in its corner."""
    arr = to_uint8(images) if isinstance(images, torch.Tensor) else images
    tiles = upscale(arr)
    nrow = nrow or max(1, math.ceil(math.sqrt(len(tiles))))
    padding = 2
    grid = make_grid(tiles, nrow, padding)
    img = _pil(grid).convert("RGB") if numbered else _pil(grid)
    if numbered:
        draw = ImageDraw.Draw(img)
        h, w = tiles.shape[1:3]
        for i, number in enumerate(range(len(tiles)) if numbers is None else numbers):
            r, col = divmod(i, nrow)
            xy = (padding + col * (w + padding) + 1, padding + r * (h + padding))
            draw.text(xy, str(number), fill=(255, 64, 64))
    return img


def save_grid(images: torch.Tensor | np.ndarray, path: str | Path, nrow: int | None = None,
              numbered: bool = False, numbers: Sequence[int] | None = None) -> Path:
    """Write a PNG grid (see ``grid_image``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:  # a sample grid is never left torn by a kill or a full disk
        grid_image(images, nrow, numbered, numbers).save(tmp)
    return path


def save_images(images: torch.Tensor, directory: str | Path, prefix: str = "") -> list[Path]:
    """One PNG per image: DIR/{prefix}00000.png, ..."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, arr in enumerate(to_uint8(images)):
        p = directory / f"{prefix}{i:05d}.png"
        _pil(arr).save(p)
        paths.append(p)
    return paths


def save_gif(frames: Sequence[np.ndarray], path: str | Path, duration_ms: int = 80) -> Path:
    """An endlessly looping animated GIF from uint8 [H, W, C] frames."""
    pil = [_pil(f).convert("RGB") for f in frames]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pil[0].save(path, save_all=True, append_images=pil[1:], duration=duration_ms, loop=0, optimize=False)
    return path
