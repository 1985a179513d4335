"""How well k-means clusters follow a labelled set's classes, on the pixel thumbnails `--clusters` fits and on the
features of a run's trained discriminator (every layer, as `ganforge probe` reads them): whether re-clustering
on D's features during training, as Liu et al. (2020) do, would give self-conditioning better clusters.

    ganforge train --preset fast --no-label-assist --dataset mnist --data-dir ../shared/data/mnist \\
        --time-limit 150 --out runs/purity
    python benchmarks/cluster_purity.py runs/purity --data-dir ../shared/data/mnist

Purity: the share of images whose cluster's most common class is their own (1.0: every cluster one class).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.cluster import MiniBatchKMeans

from ganforge.checkpoint import discriminator_from_state, load_checkpoint
from ganforge.data.base import subset_indices
from ganforge.data.clusters import thumbnails
from ganforge.data.registry import load_dataset
from ganforge.probe import extract_features
from ganforge.run import Run


def purity(clusters: np.ndarray, labels: np.ndarray) -> float:
    return sum(np.bincount(labels[clusters == c]).max() for c in np.unique(clusters)) / len(labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a run directory on a labelled dataset (its latest checkpoint's D is read)")
    parser.add_argument("--data-dir", default=None, help="the dataset's files (default: the run's)")
    parser.add_argument("--k", type=int, default=20, help="clusters")
    parser.add_argument("--n", type=int, default=50_000, help="evenly spaced training images to cluster")
    args = parser.parse_args()
    run = Run.open(args.run)
    config = run.config
    data = load_dataset(config.dataset, args.data_dir or config.data_dir, "train", config.image_size,
                        channels=config.channels, background=config.background)
    if data.labels is None:
        raise SystemExit(f"{config.dataset} has no labels to measure purity against")
    keep = subset_indices(len(data), args.n)
    images, labels = np.ascontiguousarray(data.images[keep]), np.asarray(data.labels)[keep]
    state = load_checkpoint(run.latest)
    discriminator = discriminator_from_state(state, run.latest)
    spaces = {"pixel thumbnails": lambda: thumbnails(images).numpy(),
              f"D features (step {state['step']})": lambda: extract_features(discriminator, images)}
    for name, features in spaces.items():
        t0 = time.perf_counter()
        x = features()
        clusters = MiniBatchKMeans(args.k, random_state=0, n_init=3, batch_size=4096).fit_predict(x)
        print(f"{name:28s} {x.shape[1]:6d} dims  purity {purity(clusters, labels):.3f}  "
              f"({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
