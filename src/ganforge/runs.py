"""The run directory contract: its layout, creating and opening one, and the exported generator."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .checkpoint import generator_from_checkpoint
from .config import Config, flag
from .device import resolve_device
from .errors import RunError
from .files import atomic_path
from .models import Generator, generator_from_spec


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
            raise RunError(f"{run.path}: not a ganforge run (no config.yaml)")
        return run

    @classmethod
    def create(cls, config: Config) -> RunDir:
        """A fresh directory for a new run: ``config.out``, or a new name under runs/. Never overwrites."""
        if config.out is not None:
            path = Path(config.out)
            if path.exists() and (not path.is_dir() or any(path.iterdir())):
                raise RunError(f"--out: {path} already exists; continue it with --resume {path} or pick another --out")
        else:
            stem = f"runs/{config.dataset}-{config.model}{'-cond' if config.conditional else ''}"
            path, n = Path(stem), 1
            while path.exists():
                n += 1
                path = Path(f"{stem}-{n}")
        run = cls(path)
        for d in (run.path, run.checkpoints, run.samples):
            d.mkdir(parents=True, exist_ok=True)
        config.replace(out=str(path)).save(run.config_path)
        return run


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
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=meta)
    return path


def read_generator_file(path: Path) -> Generator:
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise RunError(f"{path}: cannot read generator weights ({e}); re-export it or pass --checkpoint") from None
    if "ganforge_family" not in meta:
        raise RunError(f"{path}: not a ganforge generator (no ganforge metadata)")
    g = generator_from_spec(meta["ganforge_family"], json.loads(meta["ganforge_init"]))
    g.load_state_dict(state)
    if g.takes_labels:  # files written before the trained classes were recorded: all classes
        g.classes = json.loads(meta.get("ganforge_classes", "null")) or None
    return g


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

