"""Stacked MNIST: three MNIST digits drawn independently, one per RGB channel, so 1,000 classes (modes).

The mode-collapse benchmark of VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018): a generator
that covers the distribution makes all 1,000 digit triples, in equal shares. As in PacGAN's code for the
VEEGAN experiment, the training set is 128,000 stacked images at 28×28, and modes are counted on 26,000
samples (the ``modes`` metric). At 32×32 each digit is zero-padded by 2 pixels on every side, as the
32-px networks of the literature do: never resized, so each channel is still an MNIST digit exactly.

The draw is fixed: image i of a split is always the same triple (``DRAWS`` and ``SEEDS`` below, part of
the prepared cache's key), whatever ``--max-images`` keeps. Unlike PacGAN's code, which draws from the
70,000 train and test digits together, the train split draws from the 60,000 training digits and the test
split (26,000 images, one evaluation's worth) from the 10,000 test digits, which stay unseen in training.
Labels are 100·R + 10·G + B, named by their digits ("305": 3 in red, 0 in green, 5 in blue).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError
from . import npyfile
from .base import ImageData, PrepOptions, subset_indices
from .idx import load_idx_dataset

DRAWS = {"train": 128_000, "test": 26_000}
SEEDS = {"train": 0, "test": 1}
DIGIT_SIZE = 28
PADDED_SIZE = 32
CLASS_NAMES = tuple(f"{i:03d}" for i in range(1000))
CHUNK = 8192  # images assembled at a time (bounds the temporary copy of a 128,000-image draw)


def check_options(opts: PrepOptions) -> None:
    """Refuse, before any file is read, the options that stacked digits cannot honour."""
    if opts.image_size not in (None, DIGIT_SIZE, PADDED_SIZE):
        raise ConfigError(f"--image-size: stacked-mnist is {DIGIT_SIZE} or {PADDED_SIZE} px ({PADDED_SIZE} "
                          f"zero-pads), not {opts.image_size}")
    if opts.channels == 1:
        raise ConfigError("--channels 1: stacked-mnist is one digit per RGB channel, so 3 channels by "
                          "construction; leave --channels out")


def load_stacked(images_path: Path, labels_path: Path, split: str, opts: PrepOptions,
                 out: Path | None = None) -> ImageData:
    """Draw the split's stacked images from the MNIST IDX files of that split (into ``out`` when given)."""
    digits = load_idx_dataset("mnist", images_path, labels_path, tuple(str(i) for i in range(10)))
    picks = np.random.default_rng(SEEDS[split]).integers(0, len(digits), (DRAWS[split], 3))  # (N, RGB)
    picks = picks[subset_indices(len(picks), opts.max_images)]
    size = opts.image_size or DIGIT_SIZE
    pad = (size - DIGIT_SIZE) // 2
    images = npyfile.allocate(out, (len(picks), 3, size, size))
    for i in range(0, len(picks), CHUNK):
        block = digits.images[picks[i:i + CHUNK], 0]  # (B, 3, 28, 28)
        images[i:i + CHUNK] = np.pad(block, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    if isinstance(images, np.memmap):
        images.flush()
    labels = digits.labels[picks] @ np.array([100, 10, 1])
    return ImageData(images, labels.astype(np.int64), "stacked-mnist", CLASS_NAMES)
