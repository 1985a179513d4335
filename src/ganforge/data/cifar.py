"""CIFAR-10 from the official python-format tarball (or its unpacked ``cifar-10-batches-py`` folder).

The batches are pickles, so they are read with an unpickler that only rebuilds dicts, lists, bytes and
numpy arrays: a tampered file cannot run code. The tarball is read member by member, never unpacked.
"""

from __future__ import annotations

import codecs
import io
import pickle
import tarfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .base import ImageData

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
TARBALL = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
SPLIT_BATCHES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
MAX_BATCH_BYTES = 64 << 20  # an official batch has 31 MB; a damaged tar header can claim gigabytes of zeros


_RECONSTRUCT = np.zeros(0).__reduce__()[0]  # numpy's array unpickling helper, wherever numpy keeps it


# The pure-Python unpickler, not the C one: the C unpickler sizes (and clears) its memo for the largest index
# a damaged PUT opcode names, so 4 flipped bytes made it allocate 6.7 GB (found by fuzzing); this one keeps
# its memo in a dict, and is about as fast on a CIFAR batch (0.4 s against 0.3 s).
class _SafeUnpickler(pickle._Unpickler):  # type: ignore[name-defined]
    _ALLOWED = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
        ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
        ("_codecs", "encode"): codecs.encode,
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return self._ALLOWED[(module, name)]


def _batch(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _SafeUnpickler(io.BytesIO(raw), encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    # Any exception: a damaged pickle makes the unpickler (and the numpy and codecs calls it may make)
    # raise whatever the bytes lead to: LookupError, OverflowError, MemoryError, SystemError, ... (fuzzing
    # found each).
    except Exception as e:
        raise DataError(f"{where}: not a CIFAR-10 python batch ({type(e).__name__}: {e}); download the "
                        f"official {TARBALL} again") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise DataError(f"{where}: expected data [N, 3072] and N labels, got {data.shape} and {len(labels)} labels")
    return data.reshape(-1, 3, 32, 32), labels  # rows are R plane, G plane, B plane: already NCHW


def _check_size(size: int, where: str) -> None:
    if size > MAX_BATCH_BYTES:
        raise DataError(f"{where}: {size} bytes (or a sparse tar member), where a CIFAR-10 batch has 31 MB; "
                        f"download the official {TARBALL} again")


def cifar_inputs(data_dir: Path) -> list[Path]:
    """The tarball, or the six batch files, found in ``data_dir``."""
    for candidate in (data_dir / TARBALL, data_dir / FOLDER, data_dir):
        if candidate.is_file():
            return [candidate]
        if candidate.is_dir() and (candidate / "test_batch").is_file():
            return [candidate / b for names in SPLIT_BATCHES.values() for b in names]
    raise DataError(f"{data_dir}: no {TARBALL} and no {FOLDER}/ folder; put the official CIFAR-10 python "
                    "tarball there, or leave out --data-dir to download it")


def load_cifar10(inputs: list[Path], split: str) -> ImageData:
    wanted = SPLIT_BATCHES[split]
    raws: dict[str, tuple[bytes, str]] = {}
    if len(inputs) == 1:
        path = inputs[0]
        try:
            with tarfile.open(path, "r:*") as tar:
                for member in tar:
                    base = member.name.rsplit("/", 1)[-1]
                    if member.isfile() and base in wanted:
                        where = f"{path}:{member.name}"
                        _check_size(member.size if not member.issparse() else MAX_BATCH_BYTES + 1, where)
                        raws[base] = (tar.extractfile(member).read(), where)
        except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path}: not a readable tar.gz ({e}); delete it and download it again") from None
    else:
        for p in inputs:
            if p.name in wanted and p.is_file():
                _check_size(p.stat().st_size, str(p))
                raws[p.name] = (p.read_bytes(), str(p))
    missing = [b for b in wanted if b not in raws]
    if missing:
        raise DataError(f"{inputs[0]}: missing CIFAR-10 batch(es) {', '.join(missing)}; the download is incomplete")
    parts = [_batch(*raws[b]) for b in wanted]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return ImageData(images, labels, "cifar10", CIFAR10_CLASSES)
