"""Evaluating a generator: cached real-data statistics, the evaluator, and the one-call APIs (``metrics.registry``
has the metrics themselves)."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import Config
from ..data import ImageData, load_config_dataset
from ..data.npz import load_npz
from ..device import resolve_device
from ..download import cache_root
from ..errors import ConfigError
from ..files import atomic_path, atomic_write
from ..images import float_to_pixels
from ..models import Generator
from ..run import Run
from .distances import class_coverage, feature_stats
from .features import FeatureExtractor, make_extractor
from .registry import METRICS, RealStats, Scoring, compute_metrics, default_samples, parse_metrics

log = logging.getLogger("ganforge")

REAL_KEEP = 50_000  # real feature vectors kept in the cache for KID, precision/recall, density/coverage
BATCH = 500


# -- real-data statistics, cached ---------------------------------------------------------------------

def stats_path(data: ImageData, split: str, extractor: FeatureExtractor) -> Path:
    """Cache file named by everything that produced the statistics: data, split, size, feature network."""
    spec = {"version": 1, "dataset": data.name, "split": split, "shape": list(data.images.shape),
            "data": data.digest(), "features": extractor.ident, "keep": REAL_KEEP}
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    return cache_root() / "stats" / f"{data.name}-{split}-{data.resolution}px-{extractor.name}-{key}.npz"


def real_stats(data: ImageData, extractor: FeatureExtractor, split: str = "train", cache: bool = True) -> RealStats:
    path = stats_path(data, split, extractor)
    if cache and path.is_file():
        with np.load(path) as f:
            return RealStats(f["mu"], f["sigma"], f["features"], int(f["count"]))
    log.info("metrics: computing %s features of %d real images (%s split); cached in %s",
             extractor.name, len(data), split, path.parent)
    feats = extractor(data.images).features
    mu, sigma = feature_stats(feats)
    keep = feats
    if len(feats) > REAL_KEEP:
        keep = feats[np.sort(np.random.default_rng(0).choice(len(feats), REAL_KEEP, replace=False))]
    stats = RealStats(mu, sigma, keep, len(feats))
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            np.savez(tmp, mu=mu, sigma=sigma, features=keep, count=np.int64(len(feats)))
    return stats


# -- the generated side ---------------------------------------------------------------------------------

def generator_labels(generator: Generator, n: int, classes: Sequence[int] | None = None) -> torch.Tensor | None:
    """Conditional models: ``classes`` in turn (evenly), or the generator's own ``default_labels``."""
    if not generator.takes_labels:
        return None
    if not classes:
        return generator.default_labels(n)
    return torch.tensor([classes[i % len(classes)] for i in range(n)], dtype=torch.long)


def generated_batches(generator: Generator, n: int, seed: int, labels: torch.Tensor | None,
                      batch_size: int = BATCH) -> Iterator[torch.Tensor]:
    """uint8 [B, C, H, W] batches, quantised as saved images are (so they match the real data's type)."""
    z = generator.latents(n, seed, device="cpu")
    with torch.no_grad():
        for i in range(0, n, batch_size):
            y = None if labels is None else labels[i:i + batch_size]
            x = generator.sample(len(z[i:i + batch_size]), labels=y, z=z[i:i + batch_size], batch_size=batch_size)
            yield float_to_pixels(x)


# -- the evaluator ----------------------------------------------------------------------------------------

class Evaluator:
    """Real statistics computed (or loaded) once; each call evaluates one generator against them.

    ``n`` defaults to ``default_samples(metrics)``. Real statistics are only computed when a metric
    compares with them (not for ``is`` or ``modes`` alone).
    """

    def __init__(self, reference: ImageData, extractor: FeatureExtractor, metrics: Sequence[str] = ("fid",),
                 n: int | None = None, seed: int = 0, split: str = "train", cache: bool = True) -> None:
        self.metrics = parse_metrics(metrics)
        n = default_samples(self.metrics) if n is None else n
        if n < 2:
            raise ConfigError(f"--n must be at least 2, got {n}")
        for m in self.metrics:
            if METRICS[m].needs_probs and extractor.name == "torchscript":
                raise ConfigError(f"--metrics {m} needs class probabilities, which --features PATH does not give")
            if METRICS[m].needs_classes and not extractor.has_classes:
                raise ConfigError(f"--metrics {m} counts the classes that ganforge's domain classifier sees; "
                                  "add --features classifier")
        self.reference, self.extractor, self.n, self.seed = reference, extractor, n, seed
        needs_real = any(METRICS[m].needs_real for m in self.metrics)
        self.real = real_stats(reference, extractor, split, cache) if needs_real else None
        self._warned: set[str] = set()

    def __call__(self, generator: Generator, classes: Sequence[int] | None = None) -> dict[str, Any]:
        if (generator.channels, generator.resolution) != (self.reference.channels, self.reference.resolution):
            raise ConfigError(f"the generator makes {generator.channels}×{generator.resolution}px images but the "
                              f"reference data are {self.reference.channels}×{self.reference.resolution}px")
        if classes is None and self.reference.labels is not None and generator.takes_labels:
            classes = self.reference.present_classes()
        clustered = generator.kind == "self-conditioned"
        # A self-conditioned G draws its clusters by size; ``classes`` stay the dataset's, for the coverage,
        # and cluster ids are no labels to check the samples against.
        labels = generator.default_labels(self.n) if clustered else generator_labels(generator, self.n, classes)
        batches = generated_batches(generator, self.n, self.seed, labels)
        return self.score(batches, self.n, None if clustered else labels, classes, generator)

    def score_images(self, images: ImageData, source: str, classes: Sequence[int] | None = None) -> dict[str, Any]:
        """Score images made earlier (e.g. ``ganforge sample --out s.npz``); their labels, if any, are the
        classes they were asked for."""
        shape, want = (images.channels, images.resolution), (self.reference.channels, self.reference.resolution)
        if shape != want:
            raise ConfigError(f"{source}: the images are {shape[0]}×{shape[1]}px but the reference data are "
                              f"{want[0]}×{want[1]}px; sample them from a generator of this run")
        if len(images) < 2:
            raise ConfigError(f"{source}: {len(images)} image; scoring needs at least 2")
        labels = None if images.labels is None else torch.from_numpy(images.labels)
        if labels is not None and classes is None and self.reference.labels is not None:
            classes = self.reference.present_classes()
        batches = (torch.from_numpy(np.array(images.images[i:i + BATCH])) for i in range(0, len(images), BATCH))
        return self.score(batches, len(images), labels, classes)

    def score(self, batches: Iterator[torch.Tensor], n: int, labels: torch.Tensor | None,
              classes: Sequence[int] | None, generator: Generator | None = None) -> dict[str, Any]:
        """Metrics of n generated images, given as uint8 [B, C, H, W] batches, with the labels they were asked for."""
        for m in self.metrics:
            protocol = METRICS[m].samples
            if protocol is not None and n != protocol and m not in self._warned:
                self._warned.add(m)
                log.warning("metrics: %s is published on %d samples and these are %d: compare it only with "
                            "results on as many (--n or --eval-n %d is the published protocol)", m, protocol,
                            n, protocol)
        fake = self.extractor(batches)
        out: dict[str, Any] = {"features": self.extractor.name, "features_detail": self.extractor.description,
                               "n": n}
        scoring = Scoring(fake.features, fake.probs, self.real, self.metrics, self.seed, generator, self.extractor)
        out.update(compute_metrics(self.metrics, scoring))
        if self.extractor.has_classes and fake.probs is not None:
            predicted = fake.probs.argmax(1)
            out.update(class_coverage(predicted, fake.probs.shape[1] if classes is None else 0, classes))
            if labels is not None:
                out["label_accuracy"] = float((predicted == labels.numpy()).mean())
        return out


def reference_data(dataset: str, data_dir: str | Path | None, resolution: int | None = None,
                   classes: Sequence[int] | None = None, split: str = "train",
                   background: str = "white", channels: int | None = None) -> ImageData:
    """The real images generated ones are compared with: the split at ``resolution``, restricted to
    ``classes`` (``background``, ``channels``: as the run prepared its images). The reference of a run made of
    these options, as ``load_config_dataset`` builds it."""
    config = Config(dataset=dataset, data_dir=None if data_dir is None else str(data_dir), image_size=resolution,
                    classes=list(classes) if classes else None, background=background, channels=channels)
    return load_config_dataset(config, split, "reference")


def evaluate_generator(generator: Generator, dataset: str = "mnist", data_dir: str | Path | None = None,
                       n: int | None = None, metrics: str | Sequence[str] = ("fid", "kid", "is", "pr", "dc"),
                       features: str = "auto", classes: Sequence[int] | None = None, split: str = "train",
                       inception: str | Path | None = None, seed: int = 0, cache: bool = True,
                       background: str = "white", channels: int | None = None) -> dict[str, Any]:
    """Quality metrics of ``n`` samples of ``generator`` (default: ``default_samples(metrics)``) against
    ``dataset``'s ``split`` (restricted to ``classes``; ``channels``: the run's ``--channels``, for a
    generator trained on gray copies of colour images or the other way round).

    ``features``: ``auto`` (Inception when its weights are cached or given, else the classifier),
    ``inception``, ``classifier`` or a TorchScript file. The result names the features used; the
    Fréchet distance is under ``fid`` whichever features computed it.

    >>> evaluate_generator(G, "mnist", "../shared/data/mnist", features="classifier")["fid"]
    >>> evaluate_generator(G, "stacked-mnist", "../shared/data/mnist", metrics="modes")  # 26,000 samples
    """
    reference = reference_data(dataset, data_dir, generator.resolution, classes, split, background, channels)
    extractor = make_extractor(features, dataset, data_dir, generator.resolution, inception, generator.device)
    return Evaluator(reference, extractor, metrics, n, seed, split, cache)(generator, classes)


def evaluate_samples(run: Run | str | Path, samples: str | Path, metrics: str | Sequence[str] = ("fid", "pr"),
                     features: str = "auto", inception: str | Path | None = None,
                     data_dir: str | Path | None = None, device: str = "auto") -> dict[str, Any]:
    """Score the images of an .npz (``images``, optional ``labels``) against ``run``'s data: the files a user
    already has or hands on, not fresh samples. Nothing is written."""
    run = Run.of(run)
    if not Path(samples).is_file():
        raise ConfigError(f"--samples: {samples} is not a file; make one with ganforge sample RUN --out FILE.npz")
    images = load_npz(Path(samples))
    reference = run.dataset("train", "reference", data_dir)
    extractor = make_extractor(_features(features, inception), run.config.dataset, data_dir or run.config.data_dir,
                               reference.resolution, inception, resolve_device(device))
    result = Evaluator(reference, extractor, metrics).score_images(images, str(samples), run.config.classes)
    result["checkpoint"] = str(samples)
    return result


def _features(features: str, inception: str | Path | None) -> str:
    """``auto`` with an Inception file given means Inception."""
    return "inception" if features == "auto" and inception is not None else features


def jsonable(result: dict[str, Any]) -> dict[str, Any]:
    """Non-finite floats (a missing class makes ``class_ratio`` infinite) become null in JSON."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in result.items()}


def evaluate_run(run: Run | str | Path, n: int | None = None, metrics: str | Sequence[str] = ("fid", "kid", "is", "pr", "dc"),
                 features: str = "auto", checkpoint: str | None = None, inception: str | Path | None = None,
                 data_dir: str | Path | None = None, device: str = "auto", seed: int = 0) -> dict[str, Any]:
    """Evaluate ``run``'s generator against its data and record the result in ``RUN/metrics.json``, which maps
    each feature network (classifier, inception, torchscript) to its latest result."""
    run = Run.of(run)
    generator = run.load_generator(checkpoint=checkpoint, device=device)
    reference = run.dataset("train", "reference", data_dir)
    extractor = make_extractor(_features(features, inception), run.config.dataset, data_dir or run.config.data_dir,
                               reference.resolution, inception, generator.device)
    result = Evaluator(reference, extractor, metrics, n, seed)(generator, run.config.classes)
    result["checkpoint"] = checkpoint or "generator.safetensors"
    recorded = run.read_json(run.evaluation) or {}
    recorded[result["features"]] = jsonable(result)
    atomic_write(run.evaluation, json.dumps(recorded, indent=2) + "\n")
    return result
