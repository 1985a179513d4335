"""The modes metric: Stacked MNIST read channel by channel, the mode count and KL, through every entry point."""

import json
import logging
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from ganforge import Config, ImageData, train
from ganforge.cli import main
from ganforge.errors import ConfigError
from ganforge.metrics import Evaluator, classifier
from ganforge.metrics.evaluate import METRICS, default_samples
from ganforge.metrics.features import ChannelClassifierFeatures, FeatureExtractor, Features

from .helpers import write_idx_set


class DigitReader(nn.Module):
    """A stand-in MNIST classifier: reads the digit d from the top-left pixel (value 20·d), sure of it."""

    def forward(self, x):
        assert x.shape[1:] == (1, 28, 28)
        digit = ((x[:, 0, 0, 0] + 1) * 127.5 / 20).round()
        logits = -20.0 * (torch.arange(10) - digit[:, None]) ** 2
        return torch.stack([digit, x.mean((1, 2, 3))], 1), logits


def stacked(triples, size=28):
    """uint8 [N, 3, size, size] whose channel c shows digit triples[i][c] to DigitReader (after the crop)."""
    pad = (size - 28) // 2
    images = np.zeros((len(triples), 3, size, size), np.uint8)
    images[:, :, pad, pad] = 20 * np.asarray(triples)
    return images


def reader():
    return ChannelClassifierFeatures(DigitReader(), "reader", "digit reader", 28)


@pytest.mark.parametrize("size", [28, 32])
def test_each_channel_is_read_and_the_classes_multiply(size):
    triples = [(3, 0, 5), (9, 9, 9), (0, 0, 0), (1, 2, 3)]
    out = reader()(stacked(triples, size))
    assert out.probs.shape == (4, 1000) and np.allclose(out.probs.sum(1), 1, atol=1e-5)
    assert out.probs.argmax(1).tolist() == [305, 999, 0, 123]
    assert out.features.shape == (4, 6) and out.features[0, ::2].tolist() == [3, 0, 5]


def test_modes_counts_exactly_without_real_statistics(caplog):
    triples = [(3, 0, 5)] * 50 + [(1, 1, 1)] * 25 + [(7, 7, 0)] * 25  # p = (1/2, 1/4, 1/4)
    images = stacked(triples)
    reference = ImageData(images, np.array([305] * 50 + [111] * 25 + [770] * 25), "stacked-mnist")
    evaluator = Evaluator(reference, reader(), ["modes"])
    assert evaluator.n == 26_000 and evaluator.real is None  # the protocol's count; no real features needed
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        r = evaluator.score_images(reference, "three modes")
        again = evaluator.score_images(reference, "three modes")
    assert r["modes"] == 3 and r["modes_kl"] == pytest.approx(0.5 * np.log(500) + 0.5 * np.log(250))
    assert r["label_accuracy"] == 1.0 and again == r
    assert caplog.text.count("modes is published on 26000 samples and these are 100") == 1


def test_modes_needs_the_domain_classifier():
    class Plain(FeatureExtractor):
        name, ident = "plain", "plain"

        def batch(self, images):
            return images.float().flatten(1), None

    data = ImageData(stacked([(1, 2, 3)] * 4), None, "stacked-mnist")
    with pytest.raises(ConfigError, match="--metrics modes counts the classes .* add --features classifier"):
        Evaluator(data, Plain(), ["modes"])
    assert isinstance(Plain()(data.images), Features)


def test_default_sample_count():
    assert default_samples("fid,kid") == 10_000
    assert default_samples(["fid", "modes"]) == 26_000


@pytest.fixture
def stacked_dir(tmp_path, monkeypatch):
    monkeypatch.setitem(classifier.RECIPE, "min_steps", 30)  # a quick (and separately cached) classifier
    write_idx_set(tmp_path / "m", n=40)
    write_idx_set(tmp_path / "m", n=20, seed=1, split="test")
    return tmp_path / "m"


@pytest.mark.slow
def test_stacked_run_evaluated_in_training_and_after(stacked_dir, tmp_path, capsys, monkeypatch):
    """--eval-metrics modes (the training hook, unchanged), then `ganforge evaluate --metrics modes`."""
    run = train(Config(dataset="stacked-mnist", data_dir=str(stacked_dir), image_size=32, max_images=64, steps=2,
                       ngf=4, ndf=4, batch_size=16, eval_every=2, eval_n=300, eval_metrics=["modes"],
                       out=str(tmp_path / "run")), progress=False)
    rows = run.rows()
    evals = [r for r in rows if "modes" in r]
    assert [r["step"] for r in evals] == [2] and 1 <= evals[0]["modes"] <= 300 and evals[0]["modes_kl"] > 0
    assert (run.path / "checkpoints" / "best.pt").is_file()

    capsys.readouterr()
    assert main(["evaluate", str(run.path), "--metrics", "modes", "--n", "300", "--features", "classifier"]) == 0
    out, err = capsys.readouterr()
    assert "on each RGB channel" in out and "modes_kl" in out and "300 generated" in out
    assert "modes is published on 26000 samples" in err
    saved = json.loads((run.path / "metrics.json").read_text())["classifier"]
    assert saved["modes"] == evals[0]["modes"] and saved["modes_kl"] == pytest.approx(evals[0]["modes_kl"])
    # Without --n the protocol's count (here shrunk from 26,000 to keep the test fast), and no warning.
    monkeypatch.setitem(METRICS, "modes", replace(METRICS["modes"], samples=400))
    assert main(["evaluate", str(run.path), "--metrics", "modes", "--features", "classifier"]) == 0
    out, err = capsys.readouterr()
    assert "400 generated" in out and "published" not in err
