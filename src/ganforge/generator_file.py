"""generator.safetensors: the EMA generator for inference, its weights with what rebuilds it in the metadata."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

from .checkpoint import rebuild_generator
from .errors import RunError
from .files import atomic_path
from .models import Generator


def export_generator(generator: Generator, path: str | Path) -> Path:
    """Weights as safetensors, with the family, constructor arguments, kind and trained classes in the metadata."""
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    meta = {"ganforge_family": generator.family, "ganforge_init": json.dumps(generator.init_kwargs),
            "ganforge_classes": json.dumps(generator.classes), "ganforge_kind": generator.kind}
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
    return rebuild_generator(meta["ganforge_family"], init, state, classes, path, sizes, meta.get("ganforge_kind"))


__all__ = ["export_generator", "generator_metadata", "read_generator_file"]
