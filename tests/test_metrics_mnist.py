"""The MNIST classifier is a trustworthy judge: >= 99 % test accuracy, and its Fréchet distance orders
degradations of real digits as they should be ordered. Needs ../shared/data/mnist."""

from pathlib import Path

import numpy as np
import pytest

from ganforge import load_dataset
from ganforge.metrics import classifier, feature_stats, frechet_distance, precision_recall
from ganforge.metrics.evaluate import Evaluator
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
