"""Checkpoint files: atomic writes (temp file + rename), a ``latest.pt`` that is never torn, pruning, loading.

Checkpoints hold only tensors and plain containers, so they load with ``weights_only=True``.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch

from .config import Config, flag
from .errors import GanforgeError, RunError
from .faults import kill_point
from .files import atomic_path
from .models import Discriminator, Generator, build_models, generator_from_spec, recalibrated

STEP_FILE = re.compile(r"^step-(\d{8})\.pt$")


def _atomic_save(obj: Any, path: Path, advice: str) -> None:
    # Serialised in memory first: torch.save turns a failed file write into a RuntimeError without its errno;
    # a plain write keeps it, so atomic_path can report a full disk as such.
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path, advice) as tmp, open(tmp, "wb") as f:
        f.write(buffer.getbuffer())
        kill_point("checkpoint-write")


def _atomic_link(src: Path, dst: Path) -> None:
    """Make ``dst`` the same file as ``src`` (hard link; copy where links are not supported), atomically."""
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copy2(src, tmp)
    os.replace(tmp, dst)


def save_checkpoint(state: dict[str, Any], directory: Path, step: int, keep: int) -> Path:
    """Write step-NNNNNNNN.pt, point latest.pt at it, and keep only the newest ``keep`` step files."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"step-{step:08d}.pt"
    _atomic_save(state, path, f"free some space, then continue with --resume {directory.parent}")
    kill_point("checkpoint-link")
    _atomic_link(path, directory / "latest.pt")
    steps = sorted(p for p in directory.iterdir() if STEP_FILE.match(p.name))
    for old in steps[:-keep]:
        old.unlink()
    return path


def mark_best(directory: Path, step: int) -> None:
    """best.pt becomes the checkpoint of ``step`` (which must exist)."""
    _atomic_link(directory / f"step-{step:08d}.pt", directory / "best.pt")


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        with warnings.catch_warnings():  # a damaged pickle header makes torch warn before it fails
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise RunError(f"{path}: no such checkpoint") from None
    except Exception as e:  # a torn or foreign file: say which, and what to do
        raise RunError(f"{path}: corrupt or unreadable checkpoint ({type(e).__name__}); "
                       "use an earlier step-*.pt with --checkpoint") from None
    if not isinstance(state, dict) or "generator" not in state or "config" not in state:
        raise RunError(f"{path}: not a ganforge checkpoint")
    return state


def check_compatible(saved: dict[str, Any], config: Config, path: Path) -> None:
    """Fail, naming each option that differs, when a checkpoint was made for other networks or data."""
    saved_cfg = Config.from_dict(saved["config"], source=str(path))
    diffs = [f"--{flag(k)}: checkpoint {getattr(saved_cfg, k)!r}, config {getattr(config, k)!r}"
             for k in Config.fields(architecture=True) if getattr(saved_cfg, k) != getattr(config, k)]
    if diffs:
        raise RunError(f"{path} does not match the config: " + "; ".join(diffs))


def rebuild_generator(family: Any, init: Any, weights: Any, classes: Any, source: Path,
                      cluster_sizes: Any = None, kind: Any = None) -> Generator:
    """A generator from its family, constructor arguments, weights, trained classes (a self-conditioned G's
    cluster sizes, and its kind: files from before kinds were kept derive it), read from ``source``.

    Any of them may be corrupt or hostile: what does not fit is a RunError naming the file. The architecture
    is first built on the meta device (shapes, no memory), so a damaged size (ngf 8 -> 88888) cannot make it
    allocate gigabytes before the weights show it wrong.
    """
    try:
        with torch.device("meta"):
            expected = {k: v.shape for k, v in generator_from_spec(family, init).state_dict().items()}
        if expected != {k: v.shape for k, v in weights.items()}:
            raise ValueError("the weights do not fit the architecture")
        g = generator_from_spec(family, init)
        g.load_state_dict(weights)
        if g.takes_labels:
            g.classes = classes or None
        if cluster_sizes is not None:
            if not g.takes_labels or len(cluster_sizes) != g.num_classes or min(cluster_sizes) < 0 \
                    or not any(cluster_sizes[c] for c in g.classes):
                raise ValueError("the cluster sizes do not fit its label space")
            g.cluster_sizes = [int(n) for n in cluster_sizes]
        if kind is not None:
            g.kind = kind
    except (TypeError, ValueError, KeyError, AttributeError, RuntimeError, GanforgeError) as e:
        raise RunError(f"{source}: cannot rebuild the generator it holds ({e}); use another checkpoint or "
                       "export it again") from None
    return g


def generator_from_checkpoint(path: Path, ema: bool = True) -> Generator:
    """The (EMA, when present) generator stored in a checkpoint, rebuilt from its constructor arguments."""
    state = load_checkpoint(path)
    spec = state.get("generator_spec")
    use_ema = ema and state.get("ema") is not None
    if not isinstance(spec, dict):
        raise RunError(f"{path}: not a ganforge checkpoint (no generator_spec)")
    weights = state["ema"] if use_ema else state["generator"]
    clusters = state.get("clusters")
    sizes = clusters.get("sizes") if isinstance(clusters, dict) else None
    g = rebuild_generator(spec.get("family"), spec.get("init"), weights, state.get("train_classes"), path, sizes,
                          spec.get("kind"))
    # EMA weights carry the raw generator's BatchNorm statistics; re-estimate them for these weights.
    return recalibrated(g) if use_ema else g


def discriminator_from_state(state: dict[str, Any], path: Path) -> Discriminator:
    """The trained discriminator of a loaded checkpoint, rebuilt from its config and the data shape.

    The data shape (channels, resolution, classes) is the generator's, so no dataset has to be loaded.
    """
    config = Config.from_dict(state["config"], source=str(path))
    shape = state["generator_spec"]["init"]
    _, d = build_models(config, shape["channels"], shape["resolution"], shape["num_classes"])
    d.load_state_dict(state["discriminator"])
    return d
