"""Writing files safely: atomic writes (a reader, a crash or a full disk never sees a half-written file)
and advisory locks between processes.

Everything ganforge writes that another process or a later run reads (checkpoints, config.yaml,
generator.safetensors, caches, metrics.json) goes through ``atomic_path``: the data is written to a
temporary file beside the target, flushed to disk, and renamed over the target in one step.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import StorageError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; FileLock then guards nothing
    fcntl = None  # type: ignore[assignment]

# "No room": a full disk, an exhausted quota, a file-size limit (RLIMIT_FSIZE, ulimit -f).
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
# "Not yours to write": permissions, a read-only file system.
UNWRITABLE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (a no-op where directories cannot be opened, e.g. Windows)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def no_space_is_an_error(path: str | Path, advice: str) -> Iterator[None]:
    """In the block, an OSError that means "no room" (or "not writable here") becomes a one-line
    ``StorageError`` naming ``path``; ``advice`` says what to do about a full disk."""
    try:
        yield
    except OSError as e:
        if e.errno in NO_SPACE:
            raise StorageError(f"{path}: cannot write it ({e.strerror}: the disk is full, or a quota or "
                               f"file-size limit is reached); {advice}") from None
        if e.errno in UNWRITABLE:
            raise StorageError(f"{path}: cannot write it ({e.strerror}); make {Path(path).parent} writable for "
                               "this user, or work on a copy that is") from None
        raise


def check_writable(directory: Path, advice: str) -> None:
    """A ``StorageError`` giving ``advice`` unless this process can create files in ``directory``."""
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as e:
        if e.errno not in UNWRITABLE:
            raise
        raise StorageError(f"{directory}: cannot write there ({e.strerror}); {advice}") from None


@contextlib.contextmanager
def atomic_path(path: str | Path, advice: str = "free some space and run it again") -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s new content to; on success it replaces ``path``.

    The temporary file keeps ``path``'s suffix (``np.savez`` and friends append one otherwise) and is
    removed if the body raises, so a failed write leaves the previous file as it was. A full disk is a
    ``StorageError`` that names ``path`` and gives ``advice``, for writers that raise OSError with its errno
    (plain file writes do; torch.save and safetensors do not, so their callers serialise to bytes first).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        with no_space_is_an_error(path, f"nothing was replaced: {advice}"):
            yield tmp
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write(path: str | Path, data: str | bytes) -> Path:
    """Write text or bytes to ``path`` atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def append_line(path: str | Path, line: str, advice: str) -> None:
    """Append one line (a log row) to ``path``; a full disk is a ``StorageError`` that gives ``advice``."""
    with no_space_is_an_error(path, advice), open(path, "a") as f:
        f.write(line + "\n")


class FileLock:
    """An advisory lock on ``path`` (created if missing), held from ``acquire`` (``with``) to ``release``.

    The holder writes "process PID (since TIME)" into the file. When another process holds it, ``busy`` is
    called with that text: raising refuses, returning waits until the lock is free. The kernel drops the
    lock when its holder exits, however it dies (kill -9 included), so a crash never leaves a stale lock.
    A lock file that cannot be created (a read-only directory) is a ``StorageError`` that gives ``advice``.
    """

    def __init__(self, path: str | Path, busy: Callable[[str], None],
                 advice: str = "run it where you can write") -> None:
        self.path, self.busy, self.advice = Path(path), busy, advice
        self._fd: int | None = None

    def acquire(self) -> FileLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            if e.errno not in UNWRITABLE:
                raise
            raise StorageError(f"{self.path.parent}: cannot write there ({e.strerror}); {self.advice}") from None
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    self.busy(os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process")
                    fcntl.flock(fd, fcntl.LOCK_EX)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"process {os.getpid()} (since {time.strftime('%Y-%m-%d %H:%M:%S')})".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor releases the lock
            self._fd = None

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, *_exc: object) -> None:
        self.release()
