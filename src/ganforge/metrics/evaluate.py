"""Evaluating a generator: the metric registry, cached real-data statistics, and the one-call API."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import ImageData, load_dataset
from ..download import cache_root
from ..errors import ConfigError
from ..files import atomic_path, atomic_write
from ..images import float_to_pixels
from ..models import Generator, make_latents
from .distances import (
    MetricError,
    class_coverage,
    feature_stats,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
    manifold_metrics,
    mode_coverage,
)
from .features import FeatureExtractor, Features, make_extractor

log = logging.getLogger("ganforge")

REAL_KEEP = 50_000  # real feature vectors kept in the cache for KID, precision/recall, density/coverage
BATCH = 500
DEFAULT_N = 10_000  # generated images per evaluation, unless a metric's protocol fixes another count


@dataclass(frozen=True)
class Metric:
    name: str
    keys: tuple[str, ...]  # what it adds to the result
    primary: str  # the key that ranks checkpoints
    higher_is_better: bool
    needs_probs: bool = False  # class probabilities of the feature network
    needs_classes: bool = False  # predictions of the dataset's own classes: the domain classifier
    needs_real: bool = True  # compares with the real data's features (cached statistics)
    samples: int | None = None  # generated images of its published protocol


METRICS: dict[str, Metric] = {
    "fid": Metric("fid", ("fid",), "fid", False),
    "kid": Metric("kid", ("kid", "kid_std"), "kid", False),
    "is": Metric("is", ("is", "is_std"), "is", True, needs_probs=True, needs_real=False),
    "pr": Metric("pr", ("precision", "recall"), "recall", True),
    "dc": Metric("dc", ("density", "coverage"), "coverage", True),
    # Stacked MNIST's mode count (VEEGAN, PacGAN): 26,000 samples, each channel read by MNIST's classifier.
    "modes": Metric("modes", ("modes", "modes_kl"), "modes", True, needs_probs=True, needs_classes=True,
                    needs_real=False, samples=26_000),
}


def parse_metrics(names: str | Sequence[str], option: str = "--metrics") -> list[str]:
    """``"fid,kid"`` or a list -> validated metric names, in the given order; errors name ``option``."""
    items = [m.strip() for m in names.split(",")] if isinstance(names, str) else list(names)
    items = [m for m in items if m]
    bad = [m for m in items if m not in METRICS]
    if bad or not items:
        raise ConfigError(f"{option}: unknown metric {', '.join(bad) or '(none given)'}; choose from "
                          f"{', '.join(METRICS)}")
    return items


def default_samples(metrics: str | Sequence[str]) -> int:
    """Generated images to score: 10,000, or the published count of a metric's protocol (modes: 26,000)."""
    return max(METRICS[m].samples or DEFAULT_N for m in parse_metrics(metrics))


# -- real-data statistics, cached ---------------------------------------------------------------------

@dataclass
class RealStats:
    mu: np.ndarray  # float64 [D], over the whole reference set
    sigma: np.ndarray  # float64 [D, D]
    features: np.ndarray  # float32 [<= REAL_KEEP, D], a seeded subset for the k-NN and kernel metrics
    count: int


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
    z = make_latents(n, generator.z_dim, seed)
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
        clustered = generator.cluster_sizes is not None
        # A self-conditioned G draws its clusters by size; ``classes`` stay the dataset's, for the coverage,
        # and cluster ids are no labels to check the samples against.
        labels = generator.default_labels(self.n) if clustered else generator_labels(generator, self.n, classes)
        batches = generated_batches(generator, self.n, self.seed, labels)
        return self.score(batches, self.n, None if clustered else labels, classes)

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
              classes: Sequence[int] | None) -> dict[str, Any]:
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
        out.update(compute_metrics(self.metrics, self.real, fake))
        if self.extractor.has_classes and fake.probs is not None:
            predicted = fake.probs.argmax(1)
            out.update(class_coverage(predicted, fake.probs.shape[1] if classes is None else 0, classes))
            if labels is not None:
                out["label_accuracy"] = float((predicted == labels.numpy()).mean())
        return out


def compute_metrics(metrics: Sequence[str], real: RealStats | None, fake: Features,
                    seed: int = 0) -> dict[str, float]:
    """``real`` may be None when no metric ``needs_real``."""
    out: dict[str, float] = {}
    if any(METRICS[name].needs_real for name in metrics) and real is None:
        raise MetricError(f"--metrics {','.join(metrics)} compare with real statistics, and none were given")
    manifold: dict[str, float] | None = None
    for name in metrics:
        if METRICS[name].needs_probs and fake.probs is None:
            raise MetricError(f"--metrics {name} needs class probabilities; these features have none")
        if name == "fid":
            out["fid"] = frechet_distance(real.mu, real.sigma, *feature_stats(fake.features))
        elif name == "kid":
            out["kid"], out["kid_std"] = kernel_inception_distance(real.features, fake.features, seed=seed)
        elif name == "is":
            out["is"], out["is_std"] = inception_score(fake.probs)
        elif name == "modes":
            out.update(mode_coverage(fake.probs.argmax(1), fake.probs.shape[1]))
        elif name in ("pr", "dc"):
            if manifold is None:  # one pass over the real-to-generated distances serves both
                # k-NN metrics compare equal numbers of real and generated samples, as in both papers.
                m = min(len(real.features), len(fake.features))
                keep = np.sort(np.random.default_rng(seed).choice(len(real.features), m, replace=False))
                manifold = manifold_metrics(real.features[keep], fake.features[:m], pr="pr" in metrics,
                                            dc="dc" in metrics)
            out.update({k: manifold[k] for k in METRICS[name].keys})
    return out


def reference_data(dataset: str, data_dir: str | Path | None, resolution: int | None = None,
                   classes: Sequence[int] | None = None, split: str = "train",
                   background: str = "white", channels: int | None = None) -> ImageData:
    """The real images generated ones are compared with: the split at ``resolution``, restricted to
    ``classes`` (``background``, ``channels``: as the run prepared its images)."""
    data = load_dataset(dataset, data_dir, split, resolution, channels=channels, background=background)
    return data.select_classes(list(classes)) if classes else data


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


def evaluate_samples(path: str | Path, samples: str | Path, metrics: str | Sequence[str] = ("fid", "pr"),
                     features: str = "auto", inception: str | Path | None = None,
                     data_dir: str | Path | None = None, device: str = "auto") -> dict[str, Any]:
    """Score the images of an .npz (``images``, optional ``labels``) against the training data of the run at
    ``path``: the files a user already has or hands on, not fresh samples. Nothing is written."""
    from ..data.npz import load_npz
    from ..device import resolve_device
    from ..runs import RunDir

    config = RunDir.open(path).config()
    if not Path(samples).is_file():
        raise ConfigError(f"--samples: {samples} is not a file; make one with ganforge sample RUN --out FILE.npz")
    images = load_npz(Path(samples))
    reference = reference_data(config.dataset, data_dir or config.data_dir, config.image_size, config.classes,
                               background=config.background, channels=config.channels)
    if features == "auto" and inception is not None:
        features = "inception"
    extractor = make_extractor(features, config.dataset, data_dir or config.data_dir, reference.resolution,
                               inception, resolve_device(device))
    result = Evaluator(reference, extractor, metrics).score_images(images, str(samples), config.classes)
    result["checkpoint"] = str(samples)
    return result


def jsonable(result: dict[str, Any]) -> dict[str, Any]:
    """Non-finite floats (a missing class makes ``class_ratio`` infinite) become null in JSON."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in result.items()}


def evaluate_run(path: str | Path, n: int | None = None,
                 metrics: str | Sequence[str] = ("fid", "kid", "is", "pr", "dc"),
                 features: str = "auto", checkpoint: str | None = None, inception: str | Path | None = None,
                 data_dir: str | Path | None = None, device: str = "auto", seed: int = 0) -> dict[str, Any]:
    """Evaluate a run's generator against its training data and record the result in ``RUN/metrics.json``.

    metrics.json maps each feature network (classifier, inception, torchscript) to its latest result.
    """
    from ..runs import RunDir, load_generator

    run = RunDir.open(path)
    config = run.config()
    generator = load_generator(run.path, checkpoint=checkpoint, device=device)
    if features == "auto" and inception is not None:
        features = "inception"
    result = evaluate_generator(generator, config.dataset, data_dir or config.data_dir, n, metrics, features,
                                config.classes, inception=inception, seed=seed, background=config.background,
                                channels=config.channels)
    result["checkpoint"] = checkpoint or "generator.safetensors"
    out = run.path / "metrics.json"
    recorded = json.loads(out.read_text()) if out.is_file() else {}
    recorded[result["features"]] = jsonable(result)
    atomic_write(out, json.dumps(recorded, indent=2) + "\n")
    return result
