"""Decoding image files (PNG, JPEG, WebP, ...) once into uint8 arrays at the training resolution."""

from __future__ import annotations

import io
import logging
import os
import struct
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

from ..errors import ConfigError, DataError
from . import npyfile
from .transforms import square_resize

log = logging.getLogger("ganforge")

# Errors Pillow raises for a file it cannot decode (truncated, not an image, corrupt header, too large).
UNREADABLE = (OSError, ValueError, SyntaxError, EOFError, struct.error, Image.DecompressionBombError)
BLOCK = 512  # images decoded per batch of thread-pool work
ORIENTATION = 0x0112  # the EXIF tag
WHITE = (255, 255, 255)
BACKGROUNDS = {"white": WHITE, "black": (0, 0, 0)}
ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
# Pillow's TIFF tag reader (EXIF included) warns about damaged tags and skips them; the image still decodes,
# so it is not worth two lines of stderr per file (decoding runs in threads, where catch_warnings is unsafe).
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.TiffImagePlugin")


def parse_background(text: str) -> tuple[int, int, int]:
    """``--background``: white, black or R,G,B (0-255) -> an RGB triple."""
    name = text.strip().lower()
    if name in BACKGROUNDS:
        return BACKGROUNDS[name]
    parts = [p.strip() for p in name.split(",")]
    if len(parts) != 3 or not all(p.isdigit() and int(p) <= 255 for p in parts):
        raise ConfigError(f"--background: expected white, black or R,G,B with three integers 0-255 "
                          f"(e.g. 255,128,0), got {text!r}")
    return int(parts[0]), int(parts[1]), int(parts[2])


def flatten_alpha(img: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """Composite an image with transparency (an alpha channel or a transparent palette/colour key) over
    ``background``; others are returned as they are. Converting straight to RGB would drop the alpha and
    show whatever colour the transparent pixels happen to hold, usually black."""
    if img.mode not in ALPHA_MODES and "transparency" not in img.info:
        return img
    rgba = img.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, (*background, 255)), rgba)


def decode_image(source: Path | bytes, size: int, channels: int,
                 background: tuple[int, int, int] = WHITE) -> np.ndarray:
    """One image file (a path, or its bytes) -> uint8 [channels, size, size], centre-cropped and resized;
    transparent pixels are composited over ``background``."""
    mode = "RGB" if channels == 3 else "L"
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
        img.draft(mode, (size, size))  # JPEG: decode at the smallest DCT scale that is still >= size
        if img.getexif().get(ORIENTATION, 1) != 1:  # phone photos: upright, as viewers show them
            img = ImageOps.exif_transpose(img)
        if img.mode == "I" or img.mode.startswith("I;16"):  # 16-bit gray: keep the top 8 bits
            wide = np.asarray(img).astype(np.uint32)
            img = Image.fromarray((wide >> 8 if wide.max() > 255 else wide).astype(np.uint8))
        img = flatten_alpha(img, background)
        arr = np.asarray(square_resize(img.convert(mode), size))
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1)


def decode_all(items: Iterable[tuple[str, Callable[[], Path | bytes]]], total: int, labels: np.ndarray | None,
               size: int, channels: int, out: Path | None, strict: bool, progress: bool, what: str,
               background: tuple[int, int, int] = WHITE) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """Decode ``total`` items (name, loader) into [N, C, size, size], skipping unreadable ones unless ``strict``.

    Items are consumed in blocks, so a source can stream them. Returns the images (a memmap at ``out``
    when given), the labels of the images kept, and "name: reason" for every image skipped.
    """
    images = npyfile.allocate(out, (total, channels, size, size))
    keep = np.zeros(total, dtype=bool)
    skipped: list[str] = []

    def work(item: tuple[str, Callable[[], Path | bytes]]) -> tuple[np.ndarray | None, str | None]:
        name, load = item
        try:
            return decode_image(load(), size, channels, background), None
        except UNREADABLE as e:
            reason = "not a recognised image file" if isinstance(e, UnidentifiedImageError) else str(e) or repr(e)
            return None, f"{name}: {reason}"

    stream, seen, kept = iter(items), 0, 0
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool, \
            tqdm(total=total, desc=f"preparing {what}", unit="img", disable=not progress, leave=False) as bar:
        while block := list(islice(stream, BLOCK)):
            # Pillow releases the GIL while decoding and resizing, so threads use every core.
            for arr, problem in pool.map(work, block):
                if problem is not None:
                    if strict:
                        raise DataError(f"{problem} (unreadable image; remove it or drop --strict to skip it)")
                    skipped.append(problem)
                else:
                    images[kept] = arr
                    keep[seen] = True
                    kept += 1
                seen += 1
            bar.update(len(block))
    if seen != total:
        raise DataError(f"{what}: expected {total} images but found {seen}; did the files change while reading?")
    if kept == 0:
        raise DataError(f"{what}: none of the {total} images could be read (first: {skipped[0]})")
    if skipped:
        warn_skipped(what, skipped, total)
    if out is None:
        images = images[:kept]
    else:
        images.flush()
        del images  # the file is rewritten below
        images = npyfile.trim(out, kept)
    return images, (None if labels is None else labels[keep]), skipped


def warn_skipped(what: str, skipped: list[str], total: int) -> None:
    log.warning("%s: skipped %d unreadable image(s) of %d (first: %s); --strict makes this an error",
                what, len(skipped), total, skipped[0])
