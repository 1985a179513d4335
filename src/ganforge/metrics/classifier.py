"""The domain classifier: a small CNN trained on a dataset's labelled training split, cached once.

Its penultimate features give a Fréchet distance in the dataset's own domain (offline, no Inception
weights), and its predictions give class coverage and, for conditional models, label accuracy.
Training is seeded and runs inside a forked RNG, so it never disturbs a training run that triggers it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data import DATASETS, ImageData, load_dataset
from ..download import cache_root
from ..errors import DataError
from ..files import atomic_path
from ..images import pixels_to_float

log = logging.getLogger("ganforge")

# Everything that decides the trained weights; its hash names the cache file, so changing it retrains.
# ``min_steps`` lengthens training on small sets (the 1,497 digits); ``shift`` is in pixels per 28.
RECIPE: dict[str, Any] = {"version": 1, "width": 16, "feature_dim": 128, "epochs": 3, "min_steps": 1200,
                          "batch_size": 128, "lr": 3e-3, "weight_decay": 1e-4, "shift": 2, "seed": 0}


class DomainClassifier(nn.Module):
    """Three stride-2 conv blocks -> 128 features (BatchNorm'd, pre-ReLU) -> class logits.

    Strided convolutions instead of conv + max-pool: 4x cheaper on a CPU at the same accuracy here.
    """

    def __init__(self, channels: int, num_classes: int, width: int = 16, feature_dim: int = 128) -> None:
        super().__init__()
        self.init_kwargs = {"channels": channels, "num_classes": num_classes, "width": width,
                            "feature_dim": feature_dim}

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out),
                    nn.ReLU(inplace=True)]

        w = width
        self.body = nn.Sequential(*block(channels, w), *block(w, 2 * w), *block(2 * w, 4 * w),
                                  nn.AdaptiveAvgPool2d(4), nn.Flatten(),  # 28 -> 14 -> 7 -> 4
                                  nn.Linear(4 * w * 16, feature_dim, bias=False), nn.BatchNorm1d(feature_dim))
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(0.2), nn.Linear(feature_dim, num_classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: float [N, C, H, W] in [-1, 1] -> (features [N, feature_dim], logits [N, K])."""
        features = self.body(x)  # (N, feature_dim)
        return features, self.head(features)


def recipe_key(dataset: str, resolution: int, channels: int, num_classes: int,
               data: str | None = None) -> str:
    spec = {**RECIPE, "dataset": dataset, "resolution": resolution, "channels": channels, "classes": num_classes}
    if data is not None:
        spec["data"] = data
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


def classifier_path(dataset: str, resolution: int, channels: int, num_classes: int,
                    data: str | None = None) -> Path:
    """The cache file of a classifier; ``data`` (a digest of the training set) tells apart the sets of sources
    whose content is the user's (folder, lsun, npz), which the name alone does not."""
    key = recipe_key(dataset, resolution, channels, num_classes, data)
    return cache_root() / "evaluators" / f"{dataset}-{resolution}px-{key}.pt"


def _shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Random translation by up to ``max_shift`` pixels (zero padding = background), one per batch row."""
    if max_shift == 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)
    dx, dy = torch.randint(0, 2 * max_shift + 1, (2, n), generator=gen).tolist()
    return torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


def train_classifier(train: ImageData, test: ImageData | None = None, recipe: dict[str, Any] | None = None,
                     progress: bool = False) -> tuple[DomainClassifier, dict[str, Any]]:
    """Train a ``DomainClassifier`` on ``train`` (CPU is fine: ~1 min on MNIST); returns it and its report."""
    r = {**RECIPE, **(recipe or {})}
    if train.labels is None:
        raise DataError(f"{train.name}: the classifier features need a labelled dataset; use --features inception")
    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    # One thread: these small convolutions gain at most 1.5x from a second core, but on a shared,
    # oversubscribed machine two OpenMP threads spin-wait and ran 40x slower (measured).
    torch.set_num_threads(1)
    try:
        model = _fit(train, r, progress)
    finally:
        torch.set_num_threads(threads)
    report: dict[str, Any] = {"train_seconds": round(time.perf_counter() - t0, 1), "recipe": r,
                              "dataset": train.name, "resolution": train.resolution}
    if test is not None and test.labels is not None:
        report["test_accuracy"] = accuracy(model, test)
    return model, report


def _fit(train: ImageData, r: dict[str, Any], progress: bool = False) -> DomainClassifier:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(r["seed"])
        gen = torch.Generator().manual_seed(r["seed"])
        model = DomainClassifier(train.channels, train.num_classes, r["width"], r["feature_dim"])
        images, labels = torch.tensor(train.images), torch.tensor(train.labels)  # copies: memmaps are read-only
        steps_per_epoch = -(-len(images) // r["batch_size"])
        epochs = max(r["epochs"], -(-r["min_steps"] // steps_per_epoch))
        shift = max(1, round(r["shift"] * train.resolution / 28))
        opt = torch.optim.AdamW(model.parameters(), lr=r["lr"], weight_decay=r["weight_decay"])
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=r["lr"], total_steps=epochs * steps_per_epoch)
        model.train()
        for epoch in range(epochs):
            order = torch.randperm(len(images), generator=gen)
            for i in range(0, len(images), r["batch_size"]):
                idx = order[i:i + r["batch_size"]]
                x = _shift(pixels_to_float(images[idx]), shift, gen)
                loss = F.cross_entropy(model(x)[1], labels[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
            if progress:
                log.info("evaluator: epoch %d/%d, loss %.4f", epoch + 1, epochs, loss.item())
    return model.eval()


@torch.no_grad()
def accuracy(model: DomainClassifier, data: ImageData, batch_size: int = 1000) -> float:
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for i in range(0, len(data), batch_size):
        x = pixels_to_float(torch.from_numpy(np.array(data.images[i:i + batch_size])).to(device))
        correct += (model(x)[1].argmax(1).cpu() == torch.from_numpy(data.labels[i:i + batch_size])).sum().item()
    return correct / len(data)


def save_classifier(model: DomainClassifier, report: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save({"init": model.init_kwargs, "state": state, "report": json.dumps(report)}, tmp)
    return path


def load_classifier(path: Path) -> tuple[DomainClassifier, dict[str, Any]]:
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        model = DomainClassifier(**saved["init"])
        model.load_state_dict(saved["state"])
    except Exception as e:  # torn or foreign file: say which and what to do
        raise DataError(f"{path}: unreadable evaluator ({type(e).__name__}); delete it to retrain") from None
    return model.eval().requires_grad_(False), json.loads(saved["report"])


def get_classifier(dataset: str, data_dir: str | Path | None, resolution: int | None = None,
                   train_if_missing: bool = True, progress: bool = True,
                   retrain: bool = False) -> tuple[DomainClassifier, dict[str, Any], Path]:
    """The cached classifier for ``dataset`` at ``resolution``, trained first when it is not cached yet
    (or when ``retrain``). A set whose RGB channels are images of another (stacked-mnist) uses that set's
    classifier at its own resolution, one channel at a time (``features.ChannelClassifierFeatures``)."""
    source = DATASETS.get(dataset)
    if source is not None and source.channel_source is not None:
        dataset, resolution = source.channel_source, None
        source = DATASETS[dataset]
    train = load_dataset(dataset, data_dir, "train", resolution)
    if train.labels is None:
        raise DataError(f"--dataset {dataset} has no labels, so no classifier features; use --features inception")
    data = train.digest() if source is not None and source.needs_data_dir else None
    path = classifier_path(dataset, train.resolution, train.channels, train.num_classes, data)
    if path.is_file() and not retrain:
        model, report = load_classifier(path)
        return model, report, path
    if not train_if_missing:
        raise DataError(f"no evaluator for {dataset} at {train.resolution}px in {path.parent}; "
                        f"train it with: ganforge evaluator train --dataset {dataset}")
    log.info("evaluator: training the %s classifier (%d images, %d px) into %s", dataset, len(train),
             train.resolution, path)
    try:
        test = load_dataset(dataset, data_dir, "test", resolution)
    except DataError:
        test = None
    model, report = train_classifier(train, test, progress=progress)
    save_classifier(model, report, path)
    log.info("evaluator: trained in %.0f s, test accuracy %s", report["train_seconds"],
             f"{report['test_accuracy']:.2%}" if "test_accuracy" in report else "n/a (no test split)")
    return model, report, path
