"""Metric functions against known answers."""

import numpy as np
import pytest

from ganforge.metrics import (
    MetricError,
    class_coverage,
    density_coverage,
    frechet_distance,
    frechet_distance_features,
    inception_score,
    kernel_inception_distance,
    precision_recall,
)


def _gaussian(rng, n, mean, cov):
    return rng.multivariate_normal(mean, cov, size=n)


def test_fd_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(0).normal(size=(500, 16))
    assert abs(frechet_distance_features(x, x)) < 1e-6


def test_fd_closed_form_diagonal():
    # Commuting covariances: FD = |m1 - m2|^2 + sum (s1 - s2)^2 over the standard deviations.
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 4.0, 1.0])
    expected = 1 + 0 + 4 + (1 - 2) ** 2 + 0 + (3 - 1) ** 2
    assert abs(frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) - expected) < 1e-9


def test_fd_closed_form_non_commuting():
    # Tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2) with S1 = I reduces to Tr(S1) + Tr(S2) - 2 Tr(S2^1/2).
    rot = np.array([[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]])
    s2 = rot @ np.diag([4.0, 0.25]) @ rot.T
    expected = 2 + 4.25 - 2 * (2 + 0.5)
    assert abs(frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), s2) - expected) < 1e-9


def test_fd_of_samples_approaches_closed_form():
    rng = np.random.default_rng(1)
    a = _gaussian(rng, 200_000, [0, 0], np.diag([1.0, 4.0]))
    b = _gaussian(rng, 200_000, [3, 0], np.diag([4.0, 4.0]))
    assert abs(frechet_distance_features(a, b) - (9 + 1)) < 0.1


def test_fd_is_order_invariant():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(300, 8)), rng.normal(1, 2, size=(300, 8))
    perm = rng.permutation(300)
    assert abs(frechet_distance_features(a, b) - frechet_distance_features(a[perm], b[::-1])) < 1e-8


def test_fd_singular_covariances_use_the_offset():
    # Fewer samples than dimensions: both covariances are singular, the result stays finite and ~0.
    x = np.random.default_rng(3).normal(size=(10, 64))
    assert abs(frechet_distance_features(x, x)) < 1e-3


def test_fd_rejects_mismatched_statistics():
    with pytest.raises(MetricError, match="mismatched"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_kid_identical_sets_is_about_zero():
    x = np.random.default_rng(4).normal(size=(1000, 16))
    mean, std = kernel_inception_distance(x, x, num_subsets=20, max_subset_size=200)
    assert abs(mean) < 0.02 and std >= 0


def test_kid_is_unbiased_for_equal_distributions():
    # Independent draws of one distribution: the estimates scatter around 0, some below it (a biased
    # MMD estimate would always be positive).
    rng = np.random.default_rng(5)
    values = []
    for seed in range(20):
        a, b = rng.normal(size=(200, 8)), rng.normal(size=(200, 8))
        values.append(kernel_inception_distance(a, b, num_subsets=5, max_subset_size=100, seed=seed)[0])
    values = np.array(values)
    assert (values < 0).any()
    assert abs(values.mean()) < 3 * values.std() / np.sqrt(len(values))


def test_kid_grows_with_the_shift():
    rng = np.random.default_rng(6)
    a = rng.normal(size=(500, 8))
    near = kernel_inception_distance(a, rng.normal(0.2, 1, size=(500, 8)), num_subsets=10)[0]
    far = kernel_inception_distance(a, rng.normal(1.0, 1, size=(500, 8)), num_subsets=10)[0]
    assert 0 < near < far


def test_inception_score_identical_predictions_is_one():
    probs = np.tile([0.1, 0.2, 0.7], (100, 1))
    mean, std = inception_score(probs)
    assert abs(mean - 1) < 1e-9 and abs(std) < 1e-9


def test_inception_score_confident_even_predictions_is_k():
    k = 7
    probs = np.eye(k)[np.arange(700) % k]
    mean, _ = inception_score(probs, splits=10)
    assert abs(mean - k) < 1e-6


def test_precision_recall_identical_and_disjoint():
    x = np.random.default_rng(7).normal(size=(200, 4))
    assert precision_recall(x, x) == (1.0, 1.0)
    assert precision_recall(x, x + 100) == (0.0, 0.0)


def test_precision_recall_shifted_line():
    # Real points 0..99, generated 50..149 (1-D). k=3: inner radii 2, end radii 3. Generated 50..99 match,
    # 100..102 fall in the ball of real 99 (radius 3): precision = 53/100; recall likewise by symmetry.
    real = np.arange(100, dtype=float)[:, None]
    fake = real + 50
    p, r = precision_recall(real, fake, k=3)
    assert abs(p - 0.53) < 1e-9 and abs(r - 0.53) < 1e-9


def test_precision_only_counts_the_real_manifold():
    # Half the generated samples are real points, half far away: precision 1/2; they cover all real
    # points (recall 1).
    real = np.arange(100, dtype=float)[:, None]
    fake = np.concatenate([real, real + 1000])
    p, r = precision_recall(real, fake, k=3)
    assert abs(p - 0.5) < 1e-9 and abs(r - 1.0) < 1e-9


def test_density_coverage_known_answers():
    real = np.arange(100, dtype=float)[:, None]
    # Identical sets, k=3: real i's ball (radius 2 inside, 3 at the ends) holds 5 points inside, 4 at
    # and next to the ends: 96*5 + 4*4 = 496 memberships / (3 * 100).
    density, coverage = density_coverage(real, real, k=3)
    assert abs(density - 496 / 300) < 1e-9 and abs(coverage - 1.0) < 1e-9
    density, coverage = density_coverage(real, real + 1000, k=3)
    assert density == 0 and coverage == 0
    # Generated = the first half: those real balls are covered, plus the balls of 50 and 51 reaching back.
    _, coverage = density_coverage(real, real[:50], k=3)
    assert abs(coverage - 52 / 100) < 1e-9


def test_knn_metrics_need_more_than_k_samples():
    with pytest.raises(MetricError, match="k=3"):
        precision_recall(np.zeros((3, 2)), np.zeros((10, 2)))


def test_class_coverage():
    assert class_coverage(np.array([0, 1, 1, 2, 2, 2]), 3) == {"classes_present": 3, "classes_expected": 3,
                                                               "class_ratio": 3.0}
    collapsed = class_coverage(np.array([4] * 10), 10)
    assert collapsed["classes_present"] == 1 and collapsed["class_ratio"] == float("inf")
    assert class_coverage(np.array([3, 5, 5, 3]), 10, classes=[3, 5]) == {"classes_present": 2,
                                                                          "classes_expected": 2, "class_ratio": 1.0}


def test_mode_coverage_counts_and_kl():
    from ganforge.metrics import mode_coverage

    r = mode_coverage(np.array([0, 0, 1, 2]), 4)  # p = (1/2, 1/4, 1/4, 0)
    assert r["modes"] == 3 and r["modes_kl"] == pytest.approx(0.5 * np.log(2))
    assert mode_coverage(np.arange(1000).repeat(26), 1000) == {"modes": 1000, "modes_kl": 0.0}
    one = mode_coverage(np.full(26_000, 305), 1000)  # total collapse: log K
    assert one["modes"] == 1 and one["modes_kl"] == pytest.approx(np.log(1000))
    # 99 modes (DCGAN's count in VEEGAN's table) hit evenly: KL = log(1000 / 99).
    assert mode_coverage(np.arange(99).repeat(10), 1000)["modes_kl"] == pytest.approx(np.log(1000 / 99))
