"""Image arrays on disk as ``.npy`` files: allocated at full size, filled in place, trimmed at the end."""

from __future__ import annotations

import ast
import os
import struct
from pathlib import Path

import numpy as np


def allocate(path: Path | None, shape: tuple[int, ...], dtype: np.dtype | type = np.uint8) -> np.ndarray:
    """A writable array of ``shape``: a memory-mapped ``.npy`` at ``path``, or in memory when None."""
    if path is None:
        return np.empty(shape, dtype=dtype)
    array = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    if hasattr(os, "posix_fallocate"):
        # Reserve the blocks now: on a full disk this raises OSError(ENOSPC), where writing the pages of a
        # sparse file later would kill the process with SIGBUS.
        with open(path, "r+b") as f:
            os.posix_fallocate(f.fileno(), 0, os.fstat(f.fileno()).st_size)
    return array


def save(path: Path, array: np.ndarray) -> None:
    """``np.save``, except that a full disk raises OSError with its errno (np.save's short write has none)."""
    out = allocate(path, array.shape, array.dtype)
    out[...] = array
    out.flush()


def trim(path: Path, n: int) -> np.ndarray:
    """Keep the first ``n`` images of the ``.npy`` at ``path`` (closed by the caller): the header is
    rewritten in place and the file truncated, so nothing is copied. Returns it memory-mapped, read-only."""
    with open(path, "r+b") as f:
        magic = f.read(8)
        if magic[:6] != b"\x93NUMPY":
            raise ValueError(f"{path}: not an .npy file")
        size_format, start = ("<H", 10) if magic[6] == 1 else ("<I", 12)
        (header_len,) = struct.unpack(size_format, f.read(start - 8))
        header = ast.literal_eval(f.read(header_len).decode("latin1"))
        shape = (n, *header["shape"][1:])
        # Same header length, so the data does not move: the shorter shape is padded with spaces.
        text = repr({"descr": header["descr"], "fortran_order": False, "shape": shape})
        f.seek(start)
        f.write(text.ljust(header_len - 1).encode("latin1") + b"\n")
        f.truncate(start + header_len + int(np.prod(shape)) * np.dtype(header["descr"]).itemsize)
    return np.load(path, mmap_mode="r")

