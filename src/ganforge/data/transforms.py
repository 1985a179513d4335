"""Resizing done once, at prepare time, with a proper filter (never per training step)."""

from __future__ import annotations

import numpy as np
from PIL import Image


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """Resize uint8 [N, C, H, W] square images to size×size (box filter down, bicubic up)."""
    n, c, h, w = images.shape
    if h == size and w == size:
        return images
    resample = Image.Resampling.BOX if size < min(h, w) else Image.Resampling.BICUBIC
    out = np.empty((n, c, size, size), dtype=np.uint8)
    for i in range(n):
        for ch in range(c):
            img = Image.fromarray(images[i, ch]).resize((size, size), resample=resample)
            out[i, ch] = np.asarray(img)
    return out
