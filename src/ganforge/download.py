"""Fetching named files (datasets, feature-network weights) into a cache, safely.

A file is downloaded to a temporary name beside its target, verified against its checksum, and only
then renamed into place, so nothing half-downloaded or corrupt is ever used. Every failure says which
file, from where, and where to put it by hand.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from .errors import DataError
from .files import atomic_path

CHUNK = 1 << 20


@dataclass(frozen=True)
class RemoteFile:
    name: str  # file name in the cache directory
    urls: Sequence[str]  # official location first, then mirrors
    md5: str | None = None
    sha256: str | None = None


def cache_root() -> Path:
    """``$GANFORGE_DATA``, else ``$XDG_CACHE_HOME/ganforge``, else ``~/.cache/ganforge``."""
    if os.environ.get("GANFORGE_DATA"):
        return Path(os.environ["GANFORGE_DATA"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ganforge"


def file_digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path, remote: RemoteFile) -> str | None:
    """None if ``path`` matches the expected checksum(s), else a description of the mismatch."""
    for algorithm, expected in (("sha256", remote.sha256), ("md5", remote.md5)):
        if expected:
            got = file_digest(path, algorithm)
            if got != expected.lower():
                return f"{algorithm} {got}, expected {expected}"
    return None


class _ChecksumMismatch(Exception):
    pass


def fetch(remote: RemoteFile, directory: Path, progress: bool = True, timeout: float = 60.0) -> Path:
    """Return ``directory/remote.name``, downloading and verifying it first if it is not there yet."""
    target = directory / remote.name
    if target.is_file():
        problem = verify(target, remote)
        if problem is None:
            return target
        raise DataError(f"{target}: checksum mismatch ({problem}); delete it and run again to re-download")
    directory.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in remote.urls:
        try:
            with atomic_path(target) as tmp:  # renamed into place only once the checksum matches
                _download(url, tmp, progress, timeout)
                problem = verify(tmp, remote)
                if problem is not None:
                    raise _ChecksumMismatch(problem)
            return target
        except _ChecksumMismatch as e:
            errors.append(f"{url}: checksum mismatch ({e})")
        except (urllib.error.URLError, OSError, ValueError) as e:
            errors.append(f"{url}: {getattr(e, 'reason', e)}")
    raise DataError(
        f"could not download {remote.name} ({'; '.join(errors)}). Download it by hand from {remote.urls[0]} "
        f"and put it at {target}"
    )


def _download(url: str, dest: Path, progress: bool, timeout: float) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "ganforge"})
    with urllib.request.urlopen(request, timeout=timeout) as response, open(dest, "wb") as out:
        total = response.headers.get("Content-Length")
        total = int(total) if total and total.isdigit() else None
        done = 0
        with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name.strip(".").removesuffix(".part"),
                  disable=not progress, leave=False) as bar:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                done += len(chunk)
                bar.update(len(chunk))
        if total is not None and done != total:
            raise OSError(f"connection closed after {done} of {total} bytes")
