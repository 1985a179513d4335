"""LSUN from the official LMDB export (``bedroom_train_lmdb/`` and friends); needs ``pip install ganforge[lsun]``.

``--data-dir`` is one ``*_lmdb`` folder (unlabelled), or a folder of several, which become the classes.
Images are streamed from the database in key order and decoded once; ``--max-images`` takes the first ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .base import ImageData, PrepOptions
from .decode import decode_all
from .folder import DEFAULT_CHANNELS, DEFAULT_SIZE


def require_lmdb() -> Any:
    try:
        import lmdb
    except ImportError:
        raise DataError("--dataset lsun needs the lmdb package: pip install 'ganforge[lsun]' "
                        "(or export the images to a folder and use --dataset folder)") from None
    return lmdb


def lsun_databases(data_dir: Path) -> list[Path]:
    """The LMDB folders (each holding a data.mdb) at or directly under ``data_dir``."""
    if (data_dir / "data.mdb").is_file():
        return [data_dir]
    found = sorted(p for p in data_dir.iterdir() if (p / "data.mdb").is_file()) if data_dir.is_dir() else []
    if not found:
        raise DataError(f"{data_dir}: no LMDB database (data.mdb) here or in its sub-folders; unzip the official "
                        "LSUN export (e.g. bedroom_train_lmdb.zip) and point --data-dir at it")
    return found


def _open(lmdb: Any, db: Path) -> Any:
    try:
        return lmdb.open(str(db), readonly=True, lock=False, readahead=False, meminit=False)
    except lmdb.Error as e:
        raise DataError(f"{db}: cannot open the LMDB database ({e})") from None


def load_lsun(data_dir: Path, opts: PrepOptions, out: Path | None = None, progress: bool = False) -> ImageData:
    lmdb = require_lmdb()
    databases = lsun_databases(data_dir)
    counts = []
    for i, db in enumerate(databases):
        with _open(lmdb, db) as env:
            n = env.stat()["entries"]
        if opts.max_images is not None:  # shared evenly between the databases
            k = len(databases)
            n = min(n, opts.max_images * (i + 1) // k - opts.max_images * i // k)
        counts.append(n)
    if sum(counts) == 0:
        raise DataError(f"{data_dir}: the LMDB database is empty")

    def items() -> Iterator[tuple[str, Any]]:
        for db, n in zip(databases, counts, strict=True):
            with _open(lmdb, db) as env, env.begin(write=False) as txn:
                for j, (key, value) in enumerate(txn.cursor()):
                    if j >= n:
                        break
                    blob = bytes(value)
                    yield f"{db}[{bytes(key).decode(errors='replace')}]", (lambda blob=blob: blob)

    classes = None if opts.unlabeled or len(databases) < 2 else tuple(
        db.name.removesuffix("_lmdb").removesuffix("_train").removesuffix("_val") for db in databases)
    labels = np.repeat(np.arange(len(databases), dtype=np.int64), counts) if classes else None
    size, channels = opts.image_size or DEFAULT_SIZE, opts.channels or DEFAULT_CHANNELS
    images, labels, skipped = decode_all(items(), sum(counts), labels, size, channels, out, opts.strict,
                                         progress, str(data_dir), opts.background)
    return ImageData(images, labels, "lsun", classes, skipped=tuple(skipped))
