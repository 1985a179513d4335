"""Writing samples of a generator: a grid PNG, a folder of PNGs, or an .npz of uint8 images."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .errors import ConfigError
from .images import save_grid, save_images, to_uint8
from .latent import check_class, latents_for_seeds
from .models import Generator

BATCH = 1000


def resolve_labels(generator: Generator, n: int, label: int | None = None,
                   labels: Sequence[int] | None = None) -> torch.Tensor | None:
    """Labels for ``n`` samples: one class, an explicit list (cycled), or all classes in turn."""
    if not generator.takes_labels:
        if label is not None or labels:
            raise ConfigError("--label/--labels: this run's generator is unconditional (trained without --conditional)")
        return None
    for c in [label] if label is not None else labels or []:
        check_class(generator, c, "--label" if label is not None else "--labels")
    pool = [label] if label is not None else list(labels) if labels else generator.classes
    return torch.tensor([pool[i % len(pool)] for i in range(n)], dtype=torch.long)


def write_samples(generator: Generator, n: int, out: str | Path, seed: int = 0, label: int | None = None,
                  labels: Sequence[int] | None = None, nrow: int | None = None) -> Path:
    """Sample ``n`` images and write them to ``out``: ``*.png`` grid, ``*.npz`` arrays, or ``DIR/``.

    Image i is drawn from seed ``seed + i`` (its own latent, ``latents_for_seeds``), and a grid prints that
    seed on each tile, so the numbers on a grid can be passed to ``--seeds`` of ``interpolate``,
    ``arithmetic`` and ``sweep``. Beside a grid, ``<name>.latents.npz`` keeps each tile's ``z``, ``seeds``
    (and ``labels``) for ``--z``.
    """
    if n < 1:
        raise ConfigError(f"--n must be at least 1, got {n}")
    out_str = str(out)
    out = Path(out)
    y = resolve_labels(generator, n, label, labels)
    seeds = np.arange(seed, seed + n, dtype=np.int64)
    z = latents_for_seeds(seeds.tolist(), generator.z_dim)
    images = generator.sample(n, labels=y, z=z, batch_size=BATCH)
    extras = {} if y is None else {"labels": y.numpy()}
    if out.suffix == ".npz":
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez(out, images=to_uint8(images), z=z.numpy(), seeds=seeds, **extras)
    elif out.suffix == ".png":
        if y is not None and nrow is None and label is None and not labels:
            nrow = len(generator.classes)  # one column per class
        save_grid(images, out, nrow=nrow, numbered=True, numbers=seeds.tolist())
        np.savez(out.with_suffix(".latents.npz"), z=z.numpy(), seeds=seeds, **extras)
    elif out_str.endswith(("/", "\\")) or out.is_dir() or not out.suffix:
        save_images(images, out)
    else:
        raise ConfigError(f"--out: {out} must end in .png (grid), .npz (arrays) or / (one PNG per image)")
    return out
