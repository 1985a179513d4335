"""Writing samples of a generator: a grid PNG, a folder of PNGs, or an .npz of uint8 images."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .errors import ConfigError
from .images import grid_image, save_images, to_uint8
from .latent import check_class, load_latents, seed_latents
from .models import Generator

BATCH = 1000
MAX_CLASS_COLUMNS = 16  # a grid of more classes than this wraps like any other


def class_columns(generator: Generator) -> int | None:
    """Columns of a grid whose tiles take the trained classes in turn: one per class, for a generator that draws
    the dataset's classes (not a self-conditioned one's clusters) and has at most ``MAX_CLASS_COLUMNS``; else None
    (the grid's own layout)."""
    k = len(generator.classes)
    clustered = generator.kind == "self-conditioned"
    return k if generator.takes_labels and not clustered and 2 <= k <= MAX_CLASS_COLUMNS else None


def resolve_labels(generator: Generator, n: int, label: int | None = None,
                   labels: Sequence[int] | None = None) -> torch.Tensor | None:
    """Labels for ``n`` samples: one class, an explicit list (cycled), or the generator's own choice (all
    classes in turn; a self-conditioned one's clusters in proportion to their sizes)."""
    if not generator.takes_labels:
        if label is not None or labels:
            raise ConfigError("--label/--labels: this run's generator is unconditional (trained without --conditional)")
        return None
    for c in [label] if label is not None else labels or []:
        check_class(generator, c, "--label" if label is not None else "--labels")
    if label is None and not labels:
        return generator.default_labels(n)
    pool = [label] if label is not None else list(labels)
    return torch.tensor([pool[i % len(pool)] for i in range(n)], dtype=torch.long)


def _draw(generator: Generator, n: int, seed: int, label: int | None, labels: Sequence[int] | None,
          codes: dict[int, float] | None = None) -> tuple[torch.Tensor, dict[str, np.ndarray]]:
    """``n`` images, image i from seed ``seed + i`` (with ``codes`` set), and the arrays that say how: z, seeds
    (and labels)."""
    if n < 1:
        raise ConfigError(f"--n must be at least 1, got {n}")
    y = resolve_labels(generator, n, label, labels)
    seeds = np.arange(seed, seed + n, dtype=np.int64)
    z = generator.with_codes(seed_latents(generator, seeds.tolist()), codes or {})
    images = generator.sample(n, labels=y, z=z, batch_size=BATCH)
    # A self-conditioned G's labels are clusters: not "labels", which scoring would take for the dataset's classes.
    key = "clusters" if generator.kind == "self-conditioned" else "labels"
    return images, {"z": z.numpy(), "seeds": seeds, **({} if y is None else {key: y.numpy()})}


def sample_grid(generator: Generator, n: int, seed: int = 0, label: int | None = None,
                labels: Sequence[int] | None = None, nrow: int | None = None,
                codes: dict[int, float] | None = None) -> tuple[Image.Image, dict[str, np.ndarray]]:
    """The numbered grid of ``n`` samples (all classes in turn: one column per class) and its arrays."""
    images, arrays = _draw(generator, n, seed, label, labels, codes)
    if nrow is None and label is None and not labels:
        nrow = class_columns(generator)
    return grid_image(images, nrow, numbered=True, numbers=arrays["seeds"].tolist()), arrays


def write_samples(generator: Generator, n: int, out: str | Path, seed: int = 0, label: int | None = None,
                  labels: Sequence[int] | None = None, nrow: int | None = None,
                  codes: dict[int, float] | None = None) -> Path:
    """Sample ``n`` images and write them to ``out``: ``*.png`` grid, ``*.npz`` arrays, or ``DIR/``. ``codes``
    (index -> value) sets InfoGAN codes of every image; the others come from each image's seed.

    Image i is drawn from seed ``seed + i`` (its own latent, ``latents_for_seeds``), and a grid prints that
    seed on each tile, so the numbers on a grid can be passed to ``--seeds`` of ``interpolate``,
    ``arithmetic`` and ``sweep``. Beside a grid, ``<name>.latents.npz`` keeps each tile's ``z``, ``seeds``
    (and ``labels``, or a self-conditioned G's ``clusters``) for ``--z``.
    """
    _check_out(out)
    images, arrays = _draw(generator, n, seed, label, labels, codes)
    if nrow is None and label is None and not labels:
        nrow = class_columns(generator)
    return _write(images, arrays, out, nrow, arrays["seeds"].tolist())


def write_latents(generator: Generator, z_file: str | Path, out: str | Path, label: int | None = None,
                  labels: Sequence[int] | None = None, nrow: int | None = None) -> tuple[Path, int]:
    """The images of the latents in ``z_file`` (its ``z``, and its ``labels`` unless ``label``/``labels`` are
    given), written as ``write_samples`` writes them, tiles numbered by row; returns the file and the count."""
    z = load_latents(z_file, z_dim=generator.latent_dim)
    if label is None and not labels and generator.takes_labels:
        with np.load(z_file) as f:
            saved = f["labels"] if "labels" in f.files else f["clusters"] if "clusters" in f.files else None
        if saved is not None:
            labels = [int(v) for v in saved]
            if len(labels) != len(z):
                raise ConfigError(f"--z: {z_file} has {len(z)} latents but {len(labels)} labels")
    _check_out(out)
    y = resolve_labels(generator, len(z), label, labels)
    images = generator.sample(len(z), labels=y, z=z, batch_size=BATCH)
    key = "clusters" if generator.kind == "self-conditioned" else "labels"
    arrays = {"z": z.numpy(), **({} if y is None else {key: y.numpy()})}
    return _write(images, arrays, out, nrow, list(range(len(z)))), len(z)


def _check_out(out: str | Path) -> None:
    path = Path(out)
    if path.suffix not in (".png", ".npz") and not (str(out).endswith(("/", "\\")) or path.is_dir()
                                                    or not path.suffix):
        raise ConfigError(f"--out: {out} must end in .png (grid), .npz (arrays) or / (one PNG per image)")


def _write(images: torch.Tensor, arrays: dict[str, np.ndarray], out: str | Path, nrow: int | None,
           numbers: list[int]) -> Path:
    """A numbered grid (with its latents beside it), an .npz of the images and their arrays, or a folder."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".png":
        grid_image(images, nrow, numbered=True, numbers=numbers).save(out)
        np.savez(out.with_suffix(".latents.npz"), **arrays)
    elif out.suffix == ".npz":
        np.savez(out, images=to_uint8(images), **arrays)
    else:
        save_images(images, out)
    return out
