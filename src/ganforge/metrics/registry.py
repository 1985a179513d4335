"""The metrics by name, as ``losses.LOSSES`` has the losses: what each computes, which way is better, how many
samples its protocol scores. A new metric is one function and one entry in ``METRICS``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError
from .distances import (
    MetricError,
    feature_stats,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
    manifold_metrics,
    mode_coverage,
)

if TYPE_CHECKING:
    from ..models import Generator
    from .features import FeatureExtractor

DEFAULT_N = 10_000  # generated images per evaluation, unless a metric's protocol fixes another count


@dataclass
class RealStats:
    """The reference side, computed once per dataset and feature network (and cached)."""

    mu: np.ndarray  # float64 [D], over the whole reference set
    sigma: np.ndarray  # float64 [D, D]
    features: np.ndarray  # float32 [<= REAL_KEEP, D], a seeded subset for the k-NN and kernel metrics
    count: int


@dataclass
class Scoring:
    """What a metric reads: the generated images' features (and class probabilities), the reference's
    statistics (None when no metric asked for them), and the metrics asked for together, which share work."""

    features: np.ndarray  # float32 [N, D]
    probs: np.ndarray | None  # float32 [N, K], when the feature network has a class head
    reference: RealStats | None
    asked: Sequence[str]
    seed: int = 0
    generator: Generator | None = None  # what made the images, when a metric draws images of its own
    extractor: FeatureExtractor | None = None
    _manifold: dict[str, float] | None = field(default=None, repr=False)

    def real(self) -> RealStats:
        assert self.reference is not None, "the evaluator computes real statistics for metrics that need them"
        return self.reference

    def manifold(self) -> dict[str, float]:
        """Precision/recall and density/coverage from one pass over the real-to-generated distances, on equal
        numbers of real and generated samples (as in both papers)."""
        if self._manifold is None:
            real = self.real().features
            m = min(len(real), len(self.features))
            keep = np.sort(np.random.default_rng(self.seed).choice(len(real), m, replace=False))
            self._manifold = manifold_metrics(real[keep], self.features[:m], pr="pr" in self.asked,
                                              dc="dc" in self.asked)
        return self._manifold


@dataclass(frozen=True)
class Metric:
    name: str
    keys: tuple[str, ...]  # what it adds to the result
    primary: str  # the key that ranks checkpoints
    higher_is_better: bool
    compute: Callable[[Scoring], dict[str, float]]
    needs_probs: bool = False  # class probabilities of the feature network
    needs_classes: bool = False  # predictions of the dataset's own classes: the domain classifier
    needs_real: bool = True  # compares with the real data's features (cached statistics)
    needs_generator: bool = False  # draws images of its own (a sweep), so it cannot score a file of samples
    samples: int | None = None  # generated images of its published protocol

    def better(self, value: float, than: float) -> bool:
        """Whether ``value`` of the primary key beats ``than``, in this metric's direction."""
        return value > than if self.higher_is_better else value < than

    def __call__(self, scoring: Scoring) -> dict[str, float]:
        if self.needs_probs and scoring.probs is None:
            raise MetricError(f"--metrics {self.name} needs class probabilities; these features have none")
        if self.needs_generator and scoring.generator is None:
            raise MetricError(f"--metrics {self.name} draws images of its own from the generator, so it cannot "
                              "score a file of samples; evaluate the run instead")
        return self.compute(scoring)


def _fid(s: Scoring) -> dict[str, float]:
    real = s.real()
    return {"fid": frechet_distance(real.mu, real.sigma, *feature_stats(s.features))}


def _kid(s: Scoring) -> dict[str, float]:
    kid, std = kernel_inception_distance(s.real().features, s.features, seed=s.seed)
    return {"kid": kid, "kid_std": std}


def _is(s: Scoring) -> dict[str, float]:
    score, std = inception_score(s.probs)
    return {"is": score, "is_std": std}


def _pr(s: Scoring) -> dict[str, float]:
    m = s.manifold()
    return {"precision": m["precision"], "recall": m["recall"]}


def _dc(s: Scoring) -> dict[str, float]:
    m = s.manifold()
    return {"density": m["density"], "coverage": m["coverage"]}


def _modes(s: Scoring) -> dict[str, float]:
    return mode_coverage(s.probs.argmax(1), s.probs.shape[1])


def _codes(s: Scoring) -> dict[str, float]:
    from .codes import categorical_agreement, continuous_correlations  # draws with the generator it is given

    assert s.generator is not None and s.extractor is not None
    accuracy = categorical_agreement(s.generator, s.extractor, len(s.features), s.seed)
    # Every key the metric declares, NaN where it does not apply (no categorical code; no continuous code, or
    # colour images, where slant and stroke width mean nothing).
    nan = float("nan")
    return {"code_accuracy": nan if accuracy is None else accuracy, "code_slant_rho": nan, "code_width_rho": nan,
            **continuous_correlations(s.generator, seed=s.seed)}


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("fid", ("fid",), "fid", False, _fid),
    Metric("kid", ("kid", "kid_std"), "kid", False, _kid),
    Metric("is", ("is", "is_std"), "is", True, _is, needs_probs=True, needs_real=False),
    Metric("pr", ("precision", "recall"), "recall", True, _pr),
    Metric("dc", ("density", "coverage"), "coverage", True, _dc),
    # Stacked MNIST's mode count (VEEGAN, PacGAN): 26,000 samples, each channel read by MNIST's classifier.
    Metric("modes", ("modes", "modes_kl"), "modes", True, _modes, needs_probs=True, needs_classes=True,
           needs_real=False, samples=26_000),
    # InfoGAN codes (metrics.codes): the categorical code as a classifier, the continuous ones against slant and
    # stroke width; a self-conditioned G's clusters' purity.
    Metric("codes", ("code_accuracy", "code_slant_rho", "code_width_rho"), "code_accuracy", True, _codes,
           needs_probs=True, needs_classes=True, needs_real=False, needs_generator=True),
)}


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


def compute_metrics(metrics: Sequence[str], scoring: Scoring) -> dict[str, Any]:
    """Each metric's keys, in the order asked; ``scoring.reference`` may be None when none ``needs_real``."""
    if any(METRICS[name].needs_real for name in metrics) and scoring.reference is None:
        raise MetricError(f"--metrics {','.join(metrics)} compare with real statistics, and none were given")
    out: dict[str, Any] = {}
    for name in metrics:
        out.update(METRICS[name](scoring))
    return out


__all__ = ["DEFAULT_N", "METRICS", "Metric", "RealStats", "Scoring", "compute_metrics", "default_samples",
           "parse_metrics"]
