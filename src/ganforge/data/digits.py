"""scikit-learn's bundled 1,797 real 8×8 handwritten digits: the offline dataset."""

from __future__ import annotations

import numpy as np

from .base import ImageData


def load_digits_data(split: str = "train") -> ImageData:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # Pixel values are 0..16 (counts of set pixels in 4×4 blocks); stretch to 0..255.
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    labels = bunch.target.astype(np.int64)
    # A fixed, stratified-enough split: every 6th image is held out as "test".
    test = np.arange(len(images)) % 6 == 5
    keep = test if split == "test" else ~test
    return ImageData(images[keep], labels[keep], "digits", tuple(str(i) for i in range(10)))
