"""Resizing, cropping and channel conversion, done once at prepare time (never per training step)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..errors import DataError


def _filter(src: int, dst: int) -> Image.Resampling:
    # Box averages every source pixel into its target (no aliasing, no ringing); bicubic for upscaling.
    return Image.Resampling.BOX if dst < src else Image.Resampling.BICUBIC


def square_resize(img: Image.Image, size: int) -> Image.Image:
    """Centre-crop ``img`` to a square and resize it to size×size in one resampling pass."""
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    box = (left, top, left + side, top + side)
    if side == size:
        return img.crop(box) if (w, h) != (size, size) else img
    return img.resize((size, size), resample=_filter(side, size), box=box)


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop and resize uint8 [N, C, H, W] images (C = 1 or 3) to size×size."""
    n, c, h, w = images.shape
    if h == size and w == size:
        return images
    out = np.empty((n, c, size, size), dtype=np.uint8)
    for i in range(n):
        img = Image.fromarray(images[i, 0] if c == 1 else images[i].transpose(1, 2, 0))
        arr = np.asarray(square_resize(img, size))
        out[i] = arr[None] if c == 1 else arr.transpose(2, 0, 1)
    return out


def convert_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """uint8 [N, C, H, W] with C in (1, 3) -> ``channels`` (gray repeated, or ITU-R 601-2 luma as PIL's "L")."""
    c = images.shape[1]
    if c == channels:
        return images
    if c == 1 and channels == 3:
        return np.repeat(images, 3, axis=1)
    if c == 3 and channels == 1:
        rgb = images.astype(np.uint32)
        luma = (rgb[:, 0] * 299 + rgb[:, 1] * 587 + rgb[:, 2] * 114 + 500) // 1000
        return luma.astype(np.uint8)[:, None]
    raise DataError(f"cannot convert {c}-channel images to {channels} channels; use --channels 1 or 3")
