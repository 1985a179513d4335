"""Tiny dataset fixtures written the way the real files are (IDX, CIFAR-10 tarball, image folders)."""

from __future__ import annotations

import gzip
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_set(directory: Path, n: int = 12, seed: int = 0, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """MNIST-style gzipped IDX images [n, 28, 28] and labels [n]; returns them."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    prefix = "train" if split == "train" else "t10k"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
    (directory / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    return images, labels


def cifar_batch(n: int, first_label: int) -> tuple[bytes, np.ndarray, list[int]]:
    """A CIFAR-10 python batch whose image i has R plane = i, G = i + 100, B = i + 200 (mod 256)."""
    data = np.zeros((n, 3072), dtype=np.uint8)
    for i in range(n):
        data[i, :1024], data[i, 1024:2048], data[i, 2048:] = i, i + 100, i + 200
    labels = [(first_label + i) % 10 for i in range(n)]
    raw = pickle.dumps({b"batch_label": b"x", b"labels": labels, b"data": data, b"filenames": [b"f"] * n}, protocol=2)
    return raw, data, labels


def write_cifar(directory: Path, n: int = 3, tarball: bool = True) -> Path:
    batches = {f"data_batch_{i}": cifar_batch(n, i)[0] for i in range(1, 6)}
    batches["test_batch"] = cifar_batch(n, 7)[0]
    directory.mkdir(parents=True, exist_ok=True)
    if not tarball:
        folder = directory / "cifar-10-batches-py"
        folder.mkdir()
        for name, raw in batches.items():
            (folder / name).write_bytes(raw)
        return folder
    path = directory / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, raw in batches.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return path


def save_image(path: Path, image: np.ndarray | Image.Image) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (image if isinstance(image, Image.Image) else Image.fromarray(image)).save(path)
    return path


def solid(h: int, w: int, rgb: tuple[int, int, int]) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, dtype=np.uint8), (h, w, 3)).copy()
