"""The run directory contract: its layout, creating and opening one, and the exported generator."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

from .checkpoint import generator_from_checkpoint, rebuild_generator
from .config import Config, flag
from .device import resolve_device
from .errors import RunError
from .files import FileLock, atomic_path
from .models import Generator


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def generator(self) -> Path:
        return self.path / "generator.safetensors"

    @property
    def latest(self) -> Path:
        return self.checkpoints / "latest.pt"

    @property
    def hardware(self) -> Path:
        return self.path / "hardware.json"

    @property
    def report(self) -> Path:
        return self.path / "report.html"

    @property
    def tensorboard(self) -> Path:
        return self.path / "tensorboard"

    def config(self) -> Config:
        return Config.load(self.config_path)

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run; the error says what is missing."""
        run = cls(Path(path))
        if not run.path.is_dir():
            raise RunError(f"{run.path}: no such run directory")
        if not run.config_path.is_file():
            raise RunError(f"{run.path}: not a ganforge run (no config.yaml); if a training was stopped "
                           f"before it wrote one, start it again with --out {run.path}")
        return run

    @classmethod
    def create(cls, config: Config, hold: contextlib.ExitStack | None = None) -> RunDir:
        """A fresh directory for a new run: ``config.out``, or a new name under runs/. Never overwrites.

        With ``hold``, the run's lock (``lock``) is taken before the directory is checked and filled, and
        stays held by ``hold``: of two trainings started on one --out at once, the second is refused.
        """
        if config.out is not None:
            run = cls(Path(config.out))
            run._refuse_unless_new()
            run.path.mkdir(parents=True, exist_ok=True)
        else:
            stem, n = f"runs/{config.dataset}-{config.model}{'-cond' if config.conditional else ''}", 1
            while True:  # mkdir claims a name atomically: concurrent trainings get different ones
                run = cls(Path(stem if n == 1 else f"{stem}-{n}"))
                try:
                    run.path.mkdir(parents=True)
                    break
                except FileExistsError:
                    n += 1
        if hold is not None:
            hold.enter_context(run.lock())
            run._refuse_unless_new(locked=True)  # again: a training may have filled it before we held it
        for d in (run.checkpoints, run.samples):
            d.mkdir(exist_ok=True)
        config.replace(out=str(run.path)).save(run.config_path)
        return run

    def _refuse_unless_new(self, locked: bool = False) -> None:
        """--out may be missing, empty, or what a training killed before writing config.yaml left (hidden
        temporary files, empty folders); anything else is refused (``locked``: we hold the run's lock)."""
        if not self.path.exists():
            return
        if self.path.is_dir() and all(p.name.startswith(".") or (p.is_dir() and not any(p.iterdir()))
                                      for p in self.path.iterdir()):
            return
        if self.config_path.is_file() and not locked:
            with contextlib.suppress(OSError), self.lock():  # a run being trained: the refusal names who
                pass
        raise RunError(f"--out: {self.path} already exists; continue it with --resume {self.path} or pick "
                       "another --out")

    def remove_leftovers(self) -> None:
        """Delete the temporary files (``.NAME.PID.tmp.EXT``, see files.atomic_path) that writers killed
        mid-write left in the run; only the process that holds the run's lock may call this."""
        patterns = [(self.checkpoints, ".*.tmp*"), (self.samples, ".*.tmp*")]
        patterns += [(self.path, f".{p.stem}.*.tmp{p.suffix}")
                     for p in (self.config_path, self.metrics, self.generator)]
        for directory, pattern in patterns:
            for leftover in directory.glob(pattern):
                leftover.unlink(missing_ok=True)

    def lock(self) -> FileLock:
        """Held by the process that trains this run (rank 0 under torchrun), for the whole training; taking it
        while another process trains the run is a RunError that names that process."""
        def refuse(holder: str) -> None:
            raise RunError(f"{self.path} is being trained by {holder}; wait for it to finish or stop it "
                           "first")

        return FileLock(self.path / ".lock", refuse)


def resume_config(run: RunDir, overrides: dict[str, Any]) -> Config:
    """The run's config with the allowed overrides (``resumable`` options) applied; others are an error that
    names them."""
    saved = run.config()
    changed = {k: v for k, v in overrides.items() if getattr(saved, k) != v and k != "out"}
    refused = sorted(set(changed) - set(Config.fields(resumable=True)))
    if refused:
        details = "; ".join(f"--{flag(k)} is {getattr(saved, k)!r} in the run, you gave {changed[k]!r}" for k in refused)
        raise RunError(f"{run.config_path}: cannot change {details} when resuming (start a new run instead)")
    return saved.replace(**changed)


# -- exported generator ------------------------------------------------------------------------------

def export_generator(generator: Generator, path: str | Path) -> Path:
    """Weights as safetensors, with the family, constructor arguments and trained classes in the metadata."""
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    meta = {"ganforge_family": generator.family, "ganforge_init": json.dumps(generator.init_kwargs),
            "ganforge_classes": json.dumps(generator.classes)}
    if generator.cluster_sizes is not None:
        meta["ganforge_cluster_sizes"] = json.dumps(generator.cluster_sizes)
    # Bytes first, written by a plain write: safetensors' own file writer hides a full disk's errno.
    data = _sorted_metadata(safetensors_bytes(state, metadata=meta))
    with atomic_path(path, "free some space, then export it again (ganforge train --resume RUN)") as tmp:
        tmp.write_bytes(data)
    return path


def _sorted_metadata(data: bytes) -> bytes:
    """safetensors writes the metadata in hash order, which changes from process to process; sorted, one
    generator always makes the same bytes (a run resumed after a crash exports what a straight run does)."""
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the tensor data stays 8-byte aligned, as safetensors lays it out
    return len(text).to_bytes(8, "little") + text + data[8 + n:]


def generator_metadata(path: Path) -> dict[str, str]:
    """The metadata of an exported generator (``export_generator``), read without its weights."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}
    except (SafetensorError, OSError) as e:
        raise RunError(f"{path}: cannot read generator weights ({e}); re-export it or pass --checkpoint") from None


def read_generator_file(path: Path) -> Generator:
    meta = generator_metadata(path)
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise RunError(f"{path}: cannot read generator weights ({e}); re-export it or pass --checkpoint") from None
    if "ganforge_family" not in meta or "ganforge_init" not in meta:
        raise RunError(f"{path}: not a ganforge generator (no ganforge metadata)")
    try:
        init = json.loads(meta["ganforge_init"])
        classes = json.loads(meta.get("ganforge_classes", "null"))  # older files: all classes
        sizes = json.loads(meta.get("ganforge_cluster_sizes", "null"))
    except ValueError:
        raise RunError(f"{path}: corrupt ganforge metadata; re-export it or pass --checkpoint") from None
    return rebuild_generator(meta["ganforge_family"], init, state, classes, path, sizes)


def checkpoint_path(run: RunDir, checkpoint: str) -> Path:
    """``latest``, ``best``, a step number or a file path -> the checkpoint file."""
    if checkpoint in ("latest", "best"):
        p = run.checkpoints / f"{checkpoint}.pt"
    elif checkpoint.isdigit():
        p = run.checkpoints / f"step-{int(checkpoint):08d}.pt"
    else:
        p = Path(checkpoint)
    if not p.is_file():
        have = sorted(x.stem for x in run.checkpoints.glob("*.pt")) if run.checkpoints.is_dir() else []
        raise RunError(f"--checkpoint: {p} does not exist (this run has: {', '.join(have) or 'none'})")
    return p


def load_generator(path: str | Path, checkpoint: str | None = None, device: str = "auto") -> Generator:
    """The trained generator of a run, in eval mode, on ``device``.

    ``path`` is a run directory (its exported EMA generator, or ``checkpoint``: latest, best, a step or a
    file) or a ``.safetensors`` file written by ganforge.
    """
    path = Path(path)
    dev = resolve_device(device)
    if path.is_file() and path.suffix == ".safetensors":
        g = read_generator_file(path)
    else:
        run = RunDir.open(path)
        if checkpoint is not None:
            g = generator_from_checkpoint(checkpoint_path(run, checkpoint))
        elif run.generator.is_file():
            g = read_generator_file(run.generator)
        elif run.latest.is_file():
            g = generator_from_checkpoint(run.latest)
        else:
            raise RunError(f"{path}: the run has no generator.safetensors and no checkpoint yet")
    return g.to(dev).eval().requires_grad_(False)

