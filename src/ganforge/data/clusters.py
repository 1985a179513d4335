"""Self-conditioning (Liu et al. 2020, "Diverse Image Generation via Self-Conditioned GANs"): k-means
clusters of the training images stand in for labels, so an unlabelled set trains like a labelled one.

The clusters are fitted once, at the start of a run, on small pixel thumbnails: cheap (seconds for MNIST),
and good enough to split digits by shape or photos by layout and colour. Their centroids go into every
checkpoint, so a resumed run assigns the same images to the same clusters without fitting again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DataError
from .base import ImageData, subset_indices

log = logging.getLogger("ganforge")

THUMB = 16  # thumbnails are at most 16 px a side: 768 numbers for a colour image
FIT_MAX = 50_000  # the clusters are fitted on an evenly spaced subset of at most this many images
CHUNK = 10_000  # images per block when making thumbnails and assigning clusters


@dataclass(frozen=True)
class Clusters:
    centroids: np.ndarray  # float32 [K, D]: cluster centres in the space of ``thumbnails``

    @property
    def k(self) -> int:
        return len(self.centroids)

    def assign(self, images: np.ndarray) -> np.ndarray:
        """The nearest centroid of each uint8 [N, C, H, W] image: int64 [N]."""
        centroids = torch.from_numpy(self.centroids)
        c2 = centroids.square().sum(1)
        out = []
        for i in range(0, len(images), CHUNK):
            x = thumbnails(images[i:i + CHUNK])
            # |x - c|^2 without |x|^2, which is the same for every centroid
            out.append((c2 - 2 * x @ centroids.T).argmin(1))
        return torch.cat(out).numpy().astype(np.int64)


def thumbnails(images: np.ndarray) -> torch.Tensor:
    """Flattened average-pooled thumbnails in [0, 1]: float32 [N, C * h * w] with h, w <= THUMB."""
    x = torch.from_numpy(np.array(images, dtype=np.float32)).div_(255)  # a copy: memmaps are read-only
    factor = -(-x.shape[-1] // THUMB)
    if factor > 1:
        x = F.avg_pool2d(x, factor, ceil_mode=True)
    return x.flatten(1)


def fit_clusters(data: ImageData, k: int, seed: int = 0) -> Clusters:
    """k-means (scikit-learn's mini-batch variant) on thumbnails of up to FIT_MAX evenly spaced images."""
    from sklearn.cluster import MiniBatchKMeans

    if k > len(data):
        raise DataError(f"--clusters {k}: {data.name} has only {len(data)} images; give at most {len(data)} clusters")
    t0 = time.perf_counter()
    keep = subset_indices(len(data), FIT_MAX)
    x = torch.cat([thumbnails(data.images[keep[i:i + CHUNK]]) for i in range(0, len(keep), CHUNK)]).numpy()
    km = MiniBatchKMeans(k, random_state=seed, n_init=3, batch_size=4096).fit(x)
    log.info("clusters: %d fitted on %d images in %.1f s", k, len(keep), time.perf_counter() - t0)
    return Clusters(km.cluster_centers_.astype(np.float32))


def clustered(data: ImageData, clusters: Clusters) -> ImageData:
    """``data`` with each image's cluster id as its label (the dataset's own labels, if any, are set aside)."""
    labels = clusters.assign(data.images)
    names = tuple(f"cluster {i}" for i in range(clusters.k))
    return replace(data, labels=labels, class_names=names)

