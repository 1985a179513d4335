"""Prepare once: decoded, cropped, resized arrays cached as memory-mapped ``.npy`` files.

One cache folder per (source, split, data directory, preparation options) under
``cache_root()/prepared``. Its ``manifest.json`` also records a fingerprint of the input files (path,
size, modification time), so a changed input makes the entry stale and it is rebuilt in place. An entry
is built in a temporary folder and renamed into place only when complete, so a crash never leaves a
half-written cache that looks valid; one that fails its checks is rebuilt. A lock per entry makes a second
process that wants the same entry wait for the first one's build and reuse it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..download import cache_root
from ..errors import DataError
from ..faults import kill_point
from ..files import FileLock, no_space_is_an_error
from . import npyfile
from .base import ImageData, PrepOptions
from .decode import warn_skipped

log = logging.getLogger("ganforge")

FORMAT = 2  # bump when preparation changes what the arrays hold (2: transparency over --background)
MANIFEST = "manifest.json"

# (output .npy path or None) -> the prepared data, final form; may write its images to that path.
Builder = Callable[[Path | None], ImageData]


def prepared_root() -> Path:
    return cache_root() / "prepared"


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def fingerprint(inputs: list[Path]) -> str:
    h = hashlib.sha256()
    for p in inputs:
        st = p.stat()
        h.update(f"{p.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def cache_params(name: str, split: str, data_dir: Path | None, opts: PrepOptions,
                 recipe: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a prepared entry is keyed by; ``recipe``: the source's own fixed facts (stacked-mnist's draw)."""
    return {"source": name, "split": split, "data_dir": str(data_dir.resolve()) if data_dir else None,
            **opts.key(), "recipe": recipe or {}, "format": FORMAT}


def entry_dir(params: dict[str, Any]) -> Path:
    return prepared_root() / f"{params['source']}-{params['split']}-{_digest(params)[:16]}"


def prepared(name: str, split: str, data_dir: Path | None, opts: PrepOptions, inputs: list[Path],
             build: Builder, recipe: dict[str, Any] | None = None) -> ImageData:
    """The cached preparation of these inputs with these options, building (or rebuilding) it if needed."""
    params = cache_params(name, split, data_dir, opts, recipe)
    key = _digest({**params, "inputs": fingerprint(inputs)})
    target = entry_dir(params)
    lock: FileLock | None = FileLock(target.with_name(f".{target.name}.lock"), lambda holder: log.info(
        "waiting for %s, which is preparing %s", holder, target))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except OSError:
        lock = None  # a read-only cache: nothing to lock, and _build prepares in memory
    try:
        data = open_entry(target, key)
        if data is None:  # decoding already warned about (or refused) bad images
            return _build(target, params, key, build, locked=lock is not None)
    finally:
        if lock is not None:
            lock.release()
    if data.skipped:  # reused: say again what the preparation left out
        if opts.strict:
            raise DataError(f"{data.skipped[0]} (unreadable image; remove it or drop --strict to skip it)")
        warn_skipped(str(data_dir), list(data.skipped), len(data) + len(data.skipped))
    return data


def read_manifest(directory: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def open_entry(directory: Path, key: str) -> ImageData | None:
    """The entry at ``directory`` if it is complete, intact and built from the same inputs, else None."""
    manifest = read_manifest(directory)
    if manifest is None or manifest.get("key") != key:
        if directory.exists():
            log.info("prepared cache %s is stale or incomplete; rebuilding it", directory)
        return None
    try:
        images = np.load(directory / "images.npy", mmap_mode="r")
        labels = np.load(directory / "labels.npy") if manifest["labelled"] else None
        if images.dtype != np.uint8 or list(images.shape) != manifest["shape"]:
            raise ValueError(f"images {images.dtype} {images.shape}, manifest says {manifest['shape']}")
        names = manifest["class_names"]
        return ImageData(images, labels, manifest["params"]["source"], tuple(names) if names else None,
                         skipped=tuple(manifest["skipped"]))
    except (OSError, ValueError, KeyError, TypeError, EOFError, DataError) as e:
        log.warning("prepared cache %s is corrupt (%s); rebuilding it", directory, e)
        return None


def _build(target: Path, params: dict[str, Any], key: str, build: Builder, locked: bool) -> ImageData:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    if locked:  # no other process is building this entry: temporary folders of killed builds can go
        for stale in target.parent.glob(f".{target.name}.*"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    except OSError as e:  # a read-only cache must not stop training
        log.warning("cannot write the prepared cache under %s (%s); preparing in memory. Set GANFORGE_DATA "
                    "to a writable folder to prepare once", prepared_root(), e)
        return build(None)
    advice = ("free some space there, or set GANFORGE_DATA to a folder on a disk with room (the datasets "
              "prepared before are unaffected)")
    try:
        with no_space_is_an_error(target, advice):
            t0 = time.perf_counter()
            data = build(tmp / "images.npy")
            if not (isinstance(data.images, np.memmap) and Path(data.images.filename) == tmp / "images.npy"):
                npyfile.save(tmp / "images.npy", data.images)
            if data.labels is not None:
                npyfile.save(tmp / "labels.npy", np.asarray(data.labels, dtype=np.int64))
            kill_point("prepare")
            manifest = {"key": key, "params": params, "shape": list(data.images.shape),
                        "labelled": data.labels is not None,
                        "class_names": list(data.class_names) if data.class_names else None,
                        "skipped": list(data.skipped), "seconds": round(time.perf_counter() - t0, 3)}
            # Written last: marks the entry complete.
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
            del data
            _swap_into_place(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    data = open_entry(target, key)
    if data is None:
        raise DataError(f"{target}: the prepared cache could not be read back; delete the folder and run again")
    log.info("prepared %s (%d images, %s) in %s", params["source"], len(data),
             "×".join(map(str, data.images.shape[1:])), target)
    return data


def _swap_into_place(tmp: Path, target: Path) -> None:
    old = target.with_name(f".{target.name}.{os.getpid()}.old")
    try:
        if target.exists():
            os.rename(target, old)  # readers that have it mapped keep their (unlinked) files
        os.rename(tmp, target)
    except OSError:
        if not target.exists():  # lost a race with another process building the same entry: use theirs
            raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def list_prepared() -> list[dict[str, Any]]:
    """The manifests of every complete prepared entry (for ``ganforge datasets list``)."""
    root = prepared_root()
    if not root.is_dir():
        return []
    entries = (read_manifest(d) for d in sorted(root.iterdir()) if not d.name.startswith("."))
    return [m for m in entries if m is not None and "params" in m]
