"""What the tests share: tiny configs and data, files written the way the real ones are, the CLI and its errors."""

from __future__ import annotations

import gzip
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganforge import Config, ImageData
from ganforge.checkpoint import load_checkpoint
from ganforge.cli import main

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SUMMARY: dict[str, object] = {}  # shown at the end of the run: fuzz cases per format, kills survived


# -- configs and data ------------------------------------------------------------------------------------

def tiny_data(n: int = 64, channels: int = 1, size: int = 8, classes: int = 3, seed: int = 0) -> ImageData:
    """Random-but-structured images: class k is a brighter band at row k (so a probe could learn it)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 60, (n, channels, size, size), dtype=np.uint8)
    labels = np.arange(n) % classes if classes else None
    if classes:
        for i, k in enumerate(labels):
            images[i, :, k % size] = 230
    return ImageData(images, None if labels is None else labels.astype(np.int64), "tiny",
                     tuple(str(i) for i in range(classes)) if classes else None)


def tiny_config(tmp_path: Path, **overrides) -> Config:
    """A tiny, fast config writing into tmp_path/run."""
    base = dict(dataset="digits", ngf=8, ndf=8, z_dim=16, embed_dim=4, batch_size=16, steps=6, log_every=2,
                sample_every=3, checkpoint_every=3, g_hidden=[32, 32], d_hidden=[32], device="cpu",
                out=str(tmp_path / "run"))
    base.update(overrides)
    return Config(**base)


def weights(path: Path) -> dict[str, torch.Tensor]:
    """G's, D's and the EMA's tensors of a checkpoint, by name: what bit-exact comparisons compare."""
    state = load_checkpoint(path)
    return {f"{part}.{k}": v for part in ("generator", "discriminator", "ema") for k, v in state[part].items()}


# -- the command line ---------------------------------------------------------------------------------------

def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """``ganforge ARGS`` in this process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    """Exit code 2 and a single ``ganforge: error:`` line holding every fragment, with no traceback."""
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ganforge: error:"), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def expect_error(capsys, args: list[str], *fragments: str) -> str:
    """Run ``ganforge ARGS`` and check it fails in one line holding every fragment; returns that line."""
    code, _, err = run_cli(capsys, *args)
    assert_one_line_error(code, err, *fragments)
    return err.strip()


# -- files written the way the real ones are -------------------------------------------------------------


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
