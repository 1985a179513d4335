"""How good are a trained discriminator's features? A linear classifier on them, beside two baselines.

As in the DCGAN paper (section 5.1): every convolutional layer's feature maps are max-pooled to 4×4
and concatenated (the MLP discriminator's hidden vectors are used as they are), standardised, and a
linear classifier is fitted on labelled training images. The same probe on a randomly initialised
discriminator of the same architecture and on raw pixels says how much of the accuracy training bought.

The classifier is scikit-learn's multinomial ``LogisticRegression`` (L-BFGS) rather than the paper's
L2-SVM (``LinearSVC``): one fit for all classes instead of one per class, and it works on float32
features as they are, where liblinear copies them to float64 (60,000 × 3,072 MNIST features are
0.7 GB in float32). The question is how linearly separable the features are, not which linear loss.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from .checkpoint import discriminator_from_state
from .data import ImageData, load_dataset
from .device import resolve_device
from .errors import ConfigError, DataError, RunError
from .files import atomic_write
from .images import pixels_to_float
from .models import Discriminator
from .run import Run

POOL = 4  # feature maps are max-pooled to POOL × POOL
C = 1.0  # inverse L2 strength of the probe, the same for every feature set
MAX_ITER = 100  # D features converge in ~30 L-BFGS iterations; raw pixels gain < 0.1 % past 50
BATCH = 500


def pooled_features(discriminator: Discriminator, x: torch.Tensor) -> torch.Tensor:
    """[B, F]: every hidden layer of D, conv maps max-pooled to at most 4×4, flattened and concatenated.

    A conditional MLP discriminator reads a label with the image; it gets class 0 for every image, so
    the true label cannot leak into the features.
    """
    y = torch.zeros(len(x), dtype=torch.long, device=x.device) if discriminator.num_classes else None
    out = []
    for h in discriminator.features(x, y):
        if h.ndim == 4:  # (B, C, H, W) -> (B, C, min(H, 4), min(W, 4))
            h = F.adaptive_max_pool2d(h, (min(POOL, h.shape[2]), min(POOL, h.shape[3])))
        out.append(h.flatten(1))
    return torch.cat(out, dim=1)


@torch.no_grad()
def extract_features(discriminator: Discriminator, images: np.ndarray, batch_size: int = BATCH) -> np.ndarray:
    """float32 [N, F] features of uint8 images [N, C, H, W], in batches, in eval mode, on D's device."""
    discriminator.eval()
    device = next(discriminator.parameters()).device
    out: np.ndarray | None = None
    for i in range(0, len(images), batch_size):
        x = pixels_to_float(torch.tensor(images[i:i + batch_size]).to(device))  # a copy: memmaps are read-only
        f = pooled_features(discriminator, x).float().cpu().numpy()
        if out is None:
            out = np.empty((len(images), f.shape[1]), np.float32)
        out[i:i + len(f)] = f
    assert out is not None
    return out


def pixel_features(images: np.ndarray) -> np.ndarray:
    return pixels_to_float(torch.from_numpy(images.reshape(len(images), -1))).numpy()


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> float:
    """Test accuracy of a logistic regression on standardised features (statistics from train only).

    Standardises in place to keep one copy of the features in memory.
    """
    scaler = StandardScaler().fit(train_x)
    train_x, test_x = scaler.transform(train_x, copy=False), scaler.transform(test_x, copy=False)
    clf = LogisticRegression(C=C, max_iter=MAX_ITER)
    with warnings.catch_warnings():  # stopping at MAX_ITER short of tol: see MAX_ITER
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(train_x, train_y)
    return float(clf.score(test_x, test_y))


def random_discriminator(discriminator: Discriminator, seed: int) -> Discriminator:
    """An untrained discriminator of the same architecture, initialised from ``seed``, on the same device."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = type(discriminator)(**discriminator.init_kwargs)
    return fresh.to(next(discriminator.parameters()).device)


@dataclass(frozen=True)
class ProbeScore:
    accuracy: float
    features: int
    extract_seconds: float
    fit_seconds: float


@dataclass(frozen=True)
class ProbeResult:
    checkpoint: str
    step: int
    dataset: str
    train_size: int
    test_size: int
    classifier: str
    discriminator: ProbeScore
    random_discriminator: ProbeScore
    pixels: ProbeScore
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _score(features: Any, train: ImageData, test: ImageData) -> ProbeScore:
    t0 = time.perf_counter()
    train_x, test_x = features(train.images), features(test.images)
    t1 = time.perf_counter()
    acc = linear_probe(train_x, train.labels, test_x, test.labels)
    return ProbeScore(round(acc, 5), train_x.shape[1], round(t1 - t0, 2), round(time.perf_counter() - t1, 2))


def _probe_data(run: Run, name: str, data_dir: str | None, split: str, discriminator: Discriminator) -> ImageData:
    """The run's own data (prepared as it was, all of it, with labels), or another labelled dataset."""
    if name == run.config.dataset and data_dir in (None, run.config.data_dir):
        data = run.dataset(split, "probe")
    else:
        data = load_dataset(name, data_dir, split, discriminator.init_kwargs["resolution"])
    if data.labels is None:
        raise DataError(f"--dataset: {name} has no labels; a probe needs a labelled dataset")
    if data.channels != discriminator.init_kwargs["channels"]:
        raise DataError(f"--dataset: {name} has {data.channels} channel(s) but the discriminator takes "
                        f"{discriminator.init_kwargs['channels']}; pick a dataset like the run's")
    return data


def probe(run: Run | str | Path, dataset: str | None = None, data_dir: str | None = None, train_size: int | None = None,
          checkpoint: str | None = None, seed: int = 0, device: str = "auto", batch_size: int = BATCH) -> ProbeResult:
    """Linear-probe accuracy of a run's discriminator features, an untrained D's, and raw pixels.

    Trains on ``train_size`` random images of the train split (all when None), tests on the whole test
    split of ``dataset`` (default: the run's) and writes ``probe.json`` into the run.
    """
    t0, run = time.perf_counter(), Run.of(run)
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    if checkpoint is None and not run.latest.is_file():
        raise RunError(f"{run.path}: no checkpoints/latest.pt; the probe needs the discriminator of a checkpoint")
    path = run.checkpoint_path(checkpoint or "latest")
    state = run.load_checkpoint(str(path))
    d = discriminator_from_state(state, path).to(resolve_device(device))
    if d.pack > 1:
        raise RunError(f"{run.path}: this discriminator scores packs of {d.pack} images (--pack {d.pack}); its "
                       "features describe a pack, not one image, so a linear probe of images does not apply")
    name = dataset or run.config.dataset
    data_dir = data_dir if data_dir is not None else (run.config.data_dir if name == run.config.dataset else None)
    train = _probe_data(run, name, data_dir, "train", d)
    test = _probe_data(run, name, data_dir, "test", d)
    if train_size is not None:
        if not 1 <= train_size <= len(train):
            raise ConfigError(f"--train-size must be in 1..{len(train)} for {name}, got {train_size}")
        keep = np.sort(np.random.default_rng(seed).choice(len(train), train_size, replace=False))
        train = ImageData(train.images[keep], train.labels[keep], train.name, train.class_names)
    if len(np.unique(train.labels)) < 2:
        raise ConfigError(f"--train-size {train_size}: the training subset holds a single class; use more images")

    def d_features(model: Discriminator) -> Any:
        return lambda images: extract_features(model, images, batch_size)

    result = ProbeResult(
        checkpoint=str(path), step=int(state["step"]), dataset=name, train_size=len(train), test_size=len(test),
        classifier=f"LogisticRegression(C={C}, max_iter={MAX_ITER}) on standardised features",
        discriminator=_score(d_features(d), train, test),
        random_discriminator=_score(d_features(random_discriminator(d, seed)), train, test),
        pixels=_score(pixel_features, train, test),
        seconds=0.0,
    )
    result = replace(result, seconds=round(time.perf_counter() - t0, 2))
    atomic_write(run.probe_path, json.dumps(result.to_dict(), indent=2) + "\n")
    return result


__all__ = ["ProbeResult", "ProbeScore", "extract_features", "linear_probe", "pixel_features", "pooled_features",
           "probe", "random_discriminator"]
