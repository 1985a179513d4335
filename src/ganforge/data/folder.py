"""Any directory of images, searched recursively: how CelebA, exported LSUN and a user's own pictures are used.

Images directly in sub-folders of the root become labelled by those folders (sorted names -> 0, 1, ...)
when there are at least two such folders and no images at the top level; otherwise the set is unlabelled.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DataError
from .base import ImageData, PrepOptions, subset_indices
from .decode import decode_all

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".ppm", ".pgm"})
DEFAULT_SIZE = 64  # the DCGAN paper's resolution, when a folder of mixed sizes gets no --image-size
DEFAULT_CHANNELS = 3


def list_images(root: Path) -> list[Path]:
    """Every image file under ``root`` in sorted relative-path order; hidden files and folders are skipped."""
    if not root.is_dir():
        raise DataError(f"--data-dir: {root} is not a directory of images")
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found += [Path(dirpath, f) for f in filenames
                  if not f.startswith(".") and os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS]
    if not found:
        raise DataError(f"{root}: no images found (looked recursively for "
                        f"{', '.join(sorted(IMAGE_EXTENSIONS))}); point --data-dir at a folder of images")
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def class_folders(root: Path, files: list[Path]) -> tuple[str, ...] | None:
    parts = [p.relative_to(root).parts for p in files]
    if any(len(p) < 2 for p in parts):
        return None
    names = tuple(sorted({p[0] for p in parts}))
    return names if len(names) >= 2 else None


def load_folder(root: Path, opts: PrepOptions, out: Path | None = None, progress: bool = False,
                files: list[Path] | None = None) -> ImageData:
    """Decode the images under ``root`` (``files``: its ``list_images``, when already known)."""
    files = list_images(root) if files is None else files
    classes = None if opts.unlabeled else class_folders(root, files)
    files = [files[i] for i in subset_indices(len(files), opts.max_images)]
    labels = None
    if classes is not None:
        index = {c: i for i, c in enumerate(classes)}
        labels = np.array([index[p.relative_to(root).parts[0]] for p in files], dtype=np.int64)
    items = [(str(p), (lambda p=p: p)) for p in files]
    size, channels = opts.image_size or DEFAULT_SIZE, opts.channels or DEFAULT_CHANNELS
    images, labels, skipped = decode_all(items, len(items), labels, size, channels, out, opts.strict,
                                         progress, str(root), opts.background)
    return ImageData(images, labels, "folder", classes, skipped=tuple(skipped))
