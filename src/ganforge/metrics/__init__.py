"""Sample quality: FID, KID, Inception Score, precision/recall, density/coverage, Stacked MNIST modes.

``evaluate_generator(G, "mnist", data_dir)`` is the one-call API; the metric functions in
``distances`` work on any feature arrays.
"""

from .distances import (
    MetricError,
    class_coverage,
    density_coverage,
    feature_stats,
    frechet_distance,
    frechet_distance_features,
    inception_score,
    kernel_inception_distance,
    manifold_metrics,
    mode_coverage,
    precision_recall,
)
from .evaluate import (
    Evaluator,
    evaluate_generator,
    evaluate_run,
    evaluate_samples,
    real_stats,
    reference_data,
)
from .features import FeatureExtractor, Features, make_extractor
from .registry import METRICS, Metric, parse_metrics

__all__ = [
    "METRICS", "Evaluator", "FeatureExtractor", "Features", "Metric", "MetricError", "class_coverage",
    "density_coverage", "evaluate_generator", "evaluate_run", "evaluate_samples", "parse_metrics", "feature_stats", "frechet_distance", "frechet_distance_features",
    "inception_score", "kernel_inception_distance", "make_extractor", "manifold_metrics", "mode_coverage",
    "precision_recall", "real_stats", "reference_data",
]
