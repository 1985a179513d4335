"""A user's own arrays: an ``.npz`` with ``images`` (uint8, NHWC or NCHW, or NHW for gray) and optional
``labels`` (integers >= 0) and ``class_names``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from .base import ImageData

CHANNELS = (1, 3)


def _nchw(images: np.ndarray, path: Path) -> np.ndarray:
    if 0 in images.shape:
        raise DataError(f"{path}: images has shape {images.shape}: no images, or images without pixels")
    if images.ndim == 3:
        return images[:, None]
    if images.ndim == 4:
        if images.shape[3] in CHANNELS:  # NHWC, the edge convention, wins when both readings fit
            return images.transpose(0, 3, 1, 2)
        if images.shape[1] in CHANNELS:
            return images
    raise DataError(f"{path}: images must be [N, H, W, C] or [N, C, H, W] with C = 1 or 3 (or [N, H, W]), "
                    f"got shape {images.shape}")


def load_npz(path: Path) -> ImageData:
    if not path.is_file():
        raise DataError(f"--data-dir: {path} is not a file; for --dataset npz point it at an .npz file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            files = npz.files
            arrays = {k: npz[k] for k in ("images", "labels", "class_names") if k in files}
    # Any exception: numpy's zip and .npy readers raise whatever damaged bytes lead to (fuzzing found
    # zlib.error, SyntaxError and tokenize.TokenError from the .npy header, BadZipFile, EOFError, ValueError).
    except Exception as e:
        raise DataError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None
    if "images" not in arrays:
        raise DataError(f"{path}: no 'images' array (it has {', '.join(files) or 'none'}); "
                        "save with np.savez(path, images=..., labels=...)")
    for name, array in arrays.items():
        if not isinstance(array, np.ndarray):  # a member without the .npy header is returned as raw bytes
            raise DataError(f"{path}: {name} is not a numpy array")
    images, labels, names = arrays["images"], arrays.get("labels"), arrays.get("class_names")
    if names is not None:
        try:
            if names.ndim != 1:
                raise ValueError(f"shape {names.shape}")
            names = tuple(str(n) for n in names)
        except (ValueError, SystemError) as e:  # numpy raises SystemError for characters beyond U+10FFFF
            raise DataError(f"{path}: class_names must be a 1-D array of names ({e})") from None
    if images.dtype != np.uint8:
        raise DataError(f"{path}: images must be uint8 (0..255), got {images.dtype}; convert floats in [0, 1] "
                        "with (x * 255).round().astype(np.uint8)")
    images = np.ascontiguousarray(_nchw(images, path))
    if labels is not None:
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise DataError(f"{path}: labels must be a 1-D integer array, got {labels.dtype} {labels.shape}")
        if len(labels) != len(images):
            raise DataError(f"{path}: {len(images)} images but {len(labels)} labels")
        if len(labels) and labels.min() < 0:
            raise DataError(f"{path}: labels must be >= 0, found {labels.min()}")
        labels = labels.astype(np.int64)
        if names is not None and len(labels) and labels.max() >= len(names):
            raise DataError(f"{path}: label {labels.max()} but only {len(names)} class_names")
    return ImageData(images, labels, "npz", names if labels is not None else None)
