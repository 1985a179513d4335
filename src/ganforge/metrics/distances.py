"""Sample-quality metrics as plain functions of feature arrays (or class probabilities).

Every function takes numpy arrays [N, D] and is independent of any network, so each can be checked
against known answers. Fréchet distance and KID follow StyleGAN2-ADA's ``metrics/`` (which match the
TensorFlow originals); precision/recall follow Kynkäänniemi et al. 2019 and density/coverage Naeem et
al. 2020.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import scipy.linalg
import torch

from ..errors import GanforgeError


class MetricError(GanforgeError):
    """A metric cannot be computed from these features (too few samples, numerical failure)."""


def feature_stats(features: np.ndarray, chunk: int = 10_000) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and unbiased covariance [D, D] in float64, accumulated in chunks (Inception features are big)."""
    n = len(features)
    if np.ndim(features) != 2 or n < 2:
        raise MetricError(f"need at least 2 feature vectors [N, D] for statistics, got shape {np.shape(features)}")
    mu = np.zeros(features.shape[1])
    for i in range(0, n, chunk):
        mu += features[i:i + chunk].astype(np.float64).sum(0)
    mu /= n
    sigma = np.zeros((features.shape[1],) * 2)
    for i in range(0, n, chunk):
        x = features[i:i + chunk].astype(np.float64) - mu
        sigma += x.T @ x
    return mu, sigma / (n - 1)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) between two Gaussians, in float64.

    When the product of the covariances is singular (fewer samples than dimensions, dead features),
    ``eps`` is added to both diagonals. A square root with a non-negligible imaginary part means the
    statistics are not valid covariances (usually far too few samples) and is an error.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (len(mu1), len(mu1)):
        raise MetricError(f"mismatched statistics: means {mu1.shape} / {mu2.shape}, covariances {s1.shape} / {s2.shape}")
    diff = mu1 - mu2
    with warnings.catch_warnings(record=True) as caught:  # scipy warns "singular" and returns junk or inf
        warnings.simplefilter("always", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(s1 @ s2)
    singular = any(issubclass(w.category, scipy.linalg.LinAlgWarning) for w in caught)
    if singular or not np.isfinite(covmean).all():
        offset = np.eye(len(mu1)) * eps
        covmean = scipy.linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise MetricError(f"Fréchet distance: the covariance square root has an imaginary part of "
                              f"{np.abs(covmean.imag).max():.3g}; use more samples")
        covmean = covmean.real
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def frechet_distance_features(real: np.ndarray, fake: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets."""
    return frechet_distance(*feature_stats(real), *feature_stats(fake))


def kernel_inception_distance(real: np.ndarray, fake: np.ndarray, num_subsets: int = 100,
                              max_subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """KID (Bińkowski et al. 2018): unbiased MMD^2 with the kernel (x.y / D + 1)^3; (mean, std) over subsets.

    Dot products in float32 (twice as fast, errors ~1e-7 relative), kernel and sums in float64, where
    the cancellation between the three kernel sums happens.
    """
    real, fake = np.asarray(real, np.float32), np.asarray(fake, np.float32)
    d = real.shape[1]
    m = min(len(real), len(fake), max_subset_size)
    if m < 2:
        raise MetricError(f"KID needs at least 2 samples on each side, got {len(real)} real and {len(fake)} generated")
    rng = np.random.default_rng(seed)

    def kernel_sum(a: np.ndarray, b: np.ndarray, same: bool) -> float:
        k = (a @ b.T).astype(np.float64) / d + 1
        k = k * k * k
        return float(k.sum() - np.trace(k)) if same else float(k.sum())

    values = np.empty(num_subsets)
    for i in range(num_subsets):
        x = fake[rng.choice(len(fake), m, replace=False)]
        y = real[rng.choice(len(real), m, replace=False)]
        within = (kernel_sum(x, x, True) + kernel_sum(y, y, True)) / (m * (m - 1))
        values[i] = within - 2 * kernel_sum(x, y, False) / (m * m)
    return float(values.mean()), float(values.std())


def inception_score(probs: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))) per split of the class probabilities [N, K]; (mean, std) over splits."""
    p = np.asarray(probs, np.float64)
    if len(p) < splits:
        raise MetricError(f"Inception Score with {splits} splits needs at least {splits} samples, got {len(p)}")
    scores = []
    for part in np.array_split(p, splits):
        marginal = part.mean(0, keepdims=True)
        kl = np.sum(part * (np.log(np.clip(part, 1e-30, None)) - np.log(np.clip(marginal, 1e-30, None))), axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


# -- k-nearest-neighbour manifolds ----------------------------------------------------------------------

CHUNK = 2048  # rows of the pairwise-distance matrix held at once


def _sq_dists(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances [len(a), len(b)], clamped at 0."""
    d = (a * a).sum(1, keepdim=True) - 2 * a @ b.T + (b * b).sum(1)
    return d.clamp_(min=0)


def knn_radii(x: torch.Tensor, ks: Sequence[int]) -> torch.Tensor:
    """Squared distance from each row of ``x`` to its k-th nearest other row, for each k: [N, len(ks)]."""
    kmax = max(ks)
    if len(x) <= kmax:
        raise MetricError(f"k-NN radii with k={kmax} need more than {kmax} samples, got {len(x)}")
    out = []
    for i in range(0, len(x), CHUNK):
        d = _sq_dists(x[i:i + CHUNK], x)
        d[torch.arange(len(d)), torch.arange(i, i + len(d))] = 0  # the point itself is the 0-th neighbour
        out.append(d.topk(kmax + 1, dim=1, largest=False).values[:, list(ks)])
    return torch.cat(out)


def manifold_metrics(real: np.ndarray, fake: np.ndarray, pr: bool = True, dc: bool = True, k_pr: int = 3,
                     k_dc: int = 5) -> dict[str, float]:
    """Precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020) in one pass.

    A manifold is the union of balls around samples reaching their k-th nearest neighbour. Precision:
    the fraction of generated samples inside the real manifold; recall: of real samples inside the
    generated one. Density: how many real balls (k_dc) hold each generated sample, / k_dc, averaged (1
    when the distributions match, can exceed 1); coverage: the fraction of real balls holding at least
    one generated sample. The real-to-generated distances are computed once, in chunks, for all four.
    """
    r, f = _as_tensor(real), _as_tensor(fake)
    ks = [k for k, on in ((k_pr, pr), (k_dc, dc)) if on]
    real_radii = knn_radii(r, ks)
    r_pr, r_dc = real_radii[:, 0], real_radii[:, -1]
    fake_radii = knn_radii(f, [k_pr])[:, 0] if pr else None
    in_real = torch.zeros(len(f), dtype=torch.bool)
    density = torch.zeros(len(f), dtype=torch.float64)
    recalled, covered = [], []
    for i in range(0, len(r), CHUNK):
        d = _sq_dists(r[i:i + CHUNK], f)  # (chunk of real, all generated)
        if pr:
            in_real |= (d <= r_pr[i:i + CHUNK, None]).any(0)
            recalled.append((d <= fake_radii).any(1))
        if dc:
            density += (d <= r_dc[i:i + CHUNK, None]).sum(0)
            covered.append(d.min(1).values <= r_dc[i:i + CHUNK])
    out = {}
    if pr:
        out["precision"] = in_real.double().mean().item()
        out["recall"] = torch.cat(recalled).double().mean().item()
    if dc:
        out["density"] = density.mean().item() / k_dc
        out["coverage"] = torch.cat(covered).double().mean().item()
    return out


def _as_tensor(x: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, np.float32))


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019); see ``manifold_metrics``."""
    out = manifold_metrics(real, fake, dc=False, k_pr=k)
    return out["precision"], out["recall"]


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020), on balls around real samples; see ``manifold_metrics``."""
    out = manifold_metrics(real, fake, pr=False, k_dc=k)
    return out["density"], out["coverage"]


def class_coverage(predicted: np.ndarray, num_classes: int, classes: Sequence[int] | None = None) -> dict[str, float]:
    """The mode-collapse alarm from predicted classes: how many of the expected classes appear (of how many),
    and how unevenly.

    The expected classes are ``classes``, or 0..num_classes-1. ``class_ratio`` is the most frequent
    expected class's count over the least frequent's: 1 is perfectly even, inf means a class is missing.
    """
    expected = np.asarray(list(classes) if classes else range(num_classes), np.int64)
    counts = np.array([(np.asarray(predicted) == c).sum() for c in expected])
    present = int((counts > 0).sum())
    ratio = float(counts.max() / counts.min()) if counts.min() > 0 else float("inf")
    return {"classes_present": present, "classes_expected": len(expected), "class_ratio": ratio}


def mode_coverage(predicted: np.ndarray, num_modes: int) -> dict[str, float]:
    """Mode collapse counted as VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018) count it on
    Stacked MNIST: ``modes`` is how many of the ``num_modes`` classes the samples' predicted classes hit;
    ``modes_kl`` is KL(p || uniform) = sum over the hit modes of p log(p · num_modes), natural log, where p
    is the histogram of predicted classes. 0 for a perfectly even spread; a perfect generator still scores
    about (num_modes - 1) / (2 n) on n samples, the noise of a finite histogram."""
    counts = np.bincount(np.asarray(predicted, np.int64), minlength=num_modes)
    p = counts[counts > 0] / counts.sum()
    return {"modes": int((counts > 0).sum()), "modes_kl": float(np.sum(p * np.log(p * num_modes)))}
