"""The MNIST classifier is a trustworthy judge: >= 99 % test accuracy, its Fréchet distance orders
degradations of real digits as they should be ordered, and it finds every mode of real Stacked MNIST.
Needs ../shared/data/mnist."""

from pathlib import Path

import numpy as np
import pytest

from ganforge import load_dataset
from ganforge.metrics import classifier, feature_stats, frechet_distance, precision_recall
from ganforge.metrics.evaluate import Evaluator, reference_data
from ganforge.metrics.features import make_extractor

MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not MNIST.is_dir(), reason=f"MNIST not found at {MNIST}"),
]


@pytest.fixture(scope="module")
def extractor(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("GANFORGE_DATA", str(tmp_path_factory.mktemp("cache")))
    yield make_extractor("classifier", "mnist", MNIST, 28)  # trains with the real recipe
    mp.undo()


def test_classifier_accuracy(extractor):
    assert "test accuracy" in extractor.description
    _, report = classifier.load_classifier(classifier.classifier_path("mnist", 28, 1, 10))
    assert report["test_accuracy"] >= 0.99


def test_distance_ranks_degradations(extractor):
    train = load_dataset("mnist", MNIST, "train")
    test = load_dataset("mnist", MNIST, "test").images[:5000]
    rng = np.random.default_rng(0)

    def noisy(sigma):
        return np.clip(test + rng.normal(0, sigma * 255, test.shape), 0, 255).astype(np.uint8)

    real = Evaluator(train, extractor, ["fid"], n=5000).real
    fds = []
    for images in (test, noisy(0.1), noisy(0.3), noisy(0.6)):
        fds.append(frechet_distance(real.mu, real.sigma, *feature_stats(extractor(images).features)))
    assert fds == sorted(fds) and fds[-1] > 10 * fds[0]
    # Held-out real digits lie mostly on the real manifold.
    p, r = precision_recall(real.features[:5000], extractor(test).features)
    assert p > 0.8 and r > 0.8  # k=3 balls in 128-D: ~0.86 for two real sets of 5000


@pytest.mark.parametrize("size", [28, 32])
def test_real_stacked_mnist_covers_every_mode(extractor, size):
    """The published protocol on held-out real data: 26,000 images, every channel read by the MNIST CNN."""
    stacked = make_extractor("classifier", "stacked-mnist", MNIST, size)  # the cached MNIST CNN, per channel
    test = reference_data("stacked-mnist", MNIST, size, split="test")
    r = Evaluator(test, stacked, ["modes"]).score_images(test, "the real test split")
    assert r["n"] == 26_000 and r["modes"] == 1000
    assert 0.015 < r["modes_kl"] < 0.035  # ~0.019 from a finite histogram alone, plus misread digits
    assert r["label_accuracy"] > 0.97  # all three digits right
