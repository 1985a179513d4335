"""Readers for the official IDX files of MNIST, Fashion-MNIST and KMNIST (``*-ubyte.gz``)."""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import DataError
from .base import ImageData

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file, gzipped or not, checking the magic number and the payload size.

    The payload is read no further than the header says (and one byte more, to catch padding), so neither a
    gzip bomb nor a header claiming 2^31 images can make it allocate more than the file really holds.
    """
    try:
        with open(path, "rb") as f:
            gzipped = f.read(2) == b"\x1f\x8b"
        with gzip.open(path) if gzipped else open(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _DTYPES:
                raise DataError(f"{path}: not an IDX file (bad magic number {head.hex()})")
            dims = f.read(4 * head[3])
            shape = tuple(int.from_bytes(dims[i:i + 4], "big") for i in range(0, len(dims), 4))
            dtype = np.dtype(_DTYPES[head[2]])
            size = math.prod(shape) * dtype.itemsize
            payload = _read_at_most(f, size + 1)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: not a valid gzip file ({e}); delete it and download it again") from None
    expected = 4 + 4 * head[3] + size
    if len(dims) != 4 * head[3] or len(payload) != size:
        found = f"more than {expected}" if len(payload) > size else str(4 + len(dims) + len(payload))
        raise DataError(f"{path}: truncated or padded IDX file ({found} bytes, header says {expected})")
    return np.frombuffer(payload, dtype=dtype).reshape(shape)


def _read_at_most(f: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes, read in pieces: ``f.read(n)`` allocates ``n`` first, whatever the file holds."""
    parts = []
    while n > 0 and (part := f.read(min(n, 1 << 24))):
        parts.append(part)
        n -= len(part)
    return b"".join(parts)


def find_idx_file(data_dir: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx") + ".gz", stem.replace("-idx", ".idx")):
        if (data_dir / name).is_file():
            return data_dir / name
    raise DataError(f"{data_dir}: no {stem}.gz (or {stem}); put the official IDX files there, "
                    "or leave out --data-dir to download them")


def load_idx_dataset(name: str, img_path: Path, lbl_path: Path, class_names: tuple[str, ...]) -> ImageData:
    images, labels = read_idx(img_path), read_idx(lbl_path)
    if images.ndim != 3 or labels.ndim != 1:
        raise DataError(f"{img_path}: expected images [N, H, W] and labels [N], got {images.shape} and {labels.shape}")
    if len(images) != len(labels):
        raise DataError(f"{img_path}: {len(images)} images but {lbl_path.name} has {len(labels)} labels")
    return ImageData(images[:, None].copy(), labels.astype(np.int64), name, class_names)  # writable copy
