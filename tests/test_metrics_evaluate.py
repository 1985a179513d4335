"""Evaluating generators end to end on the embedded digits: the API, the cache, the CLI, --eval-every."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge import Config, load_dataset, train
from ganforge.cli import main
from ganforge.metrics import classifier, evaluate_generator
from ganforge.metrics.features import ClassifierFeatures
from ganforge.models import Generator


@pytest.fixture(scope="module", autouse=True)
def quick_cache(tmp_path_factory):
    """One cache for the module and a shorter classifier recipe (its own hash, so its own file)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("GANFORGE_DATA", str(tmp_path_factory.mktemp("cache")))
    mp.setitem(classifier.RECIPE, "min_steps", 400)
    yield
    mp.undo()


class Replay(Generator):
    """A 'generator' that returns real digits (of the requested class when conditional)."""

    family = "replay"

    def __init__(self, images: np.ndarray, labels: np.ndarray, num_classes: int = 0, collapse: bool = False):
        super().__init__()
        self.images = torch.from_numpy(images).float() / 127.5 - 1
        self.labels = torch.from_numpy(labels)
        self.num_classes, self.z_dim, self.channels, self.resolution = num_classes, 4, 1, 8
        self.collapse = collapse
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # gives the module a device
        self.calls = 0

    def forward(self, z, y=None):
        idx = (z[:, 0].abs() * 1e6).long() % len(self.images)
        if y is not None:  # the first image of each requested class, varied by z among that class
            pools = [torch.nonzero(self.labels == c).flatten() for c in y.tolist()]
            idx = torch.stack([p[i % len(p)] for p, i in zip(pools, idx.tolist(), strict=True)])
        if self.collapse:
            idx = torch.zeros_like(idx)
        return self.images[idx]


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.mark.slow
def test_real_data_scores_near_perfect(digits):
    r = evaluate_generator(Replay(digits.images, digits.labels), "digits", n=1000, features="classifier",
                           metrics="fid,kid,is,pr,dc")
    assert r["features"] == "classifier" and "ganforge CNN for digits" in r["features_detail"]
    assert r["fid"] < 2 and abs(r["kid"]) < 0.1
    assert r["precision"] > 0.9 and r["recall"] > 0.9 and r["coverage"] > 0.9
    assert r["classes_present"] == r["classes_expected"] == 10 and r["class_ratio"] < 2
    assert 5 < r["is"] <= 10


def test_collapse_is_caught(digits):
    good = evaluate_generator(Replay(digits.images, digits.labels), "digits", n=500, metrics="fid,pr")
    bad = evaluate_generator(Replay(digits.images, digits.labels, collapse=True), "digits", n=500, metrics="fid,pr")
    assert bad["fid"] > 10 * good["fid"] and bad["recall"] < 0.05
    assert bad["classes_present"] == 1 and bad["class_ratio"] == float("inf")


def test_conditional_label_accuracy(digits):
    g = Replay(digits.images, digits.labels, num_classes=10)
    r = evaluate_generator(g, "digits", n=500, metrics="fid")
    assert r["label_accuracy"] > 0.9
    r = evaluate_generator(g, "digits", n=200, metrics="fid", classes=[3, 5])
    assert r["classes_present"] == 2 and r["label_accuracy"] > 0.9


def test_real_statistics_are_cached(digits, monkeypatch):
    calls = []
    original = ClassifierFeatures.__call__
    monkeypatch.setattr(ClassifierFeatures, "__call__", lambda self, x: calls.append(1) or original(self, x))
    g = Replay(digits.images, digits.labels)
    first = evaluate_generator(g, "digits", n=300, metrics="fid", classes=[1, 7])  # a new reference set
    assert len(calls) == 2  # real, then generated
    second = evaluate_generator(g, "digits", n=300, metrics="fid", classes=[1, 7])
    assert len(calls) == 3 and second["fid"] == first["fid"]
    stats = os.listdir(os.path.join(os.environ["GANFORGE_DATA"], "stats"))
    assert any(name.startswith("digits-train-8px-classifier-") for name in stats)


def test_eval_every_logs_keeps_best_and_leaves_training_alone(tmp_path):
    opts = dict(dataset="digits", steps=20, ngf=4, ndf=4, log_every=5, checkpoint_every=20, seed=3)
    plain = train(Config(out=str(tmp_path / "plain"), **opts), progress=False)
    evald = train(Config(out=str(tmp_path / "eval"), eval_every=8, eval_n=200, eval_metrics=["pr", "fid"], **opts),
                  progress=False)
    rows = evald.rows()
    evals = [r for r in rows if "recall" in r]
    assert [r["step"] for r in evals] == [8, 16] and all("fid" in r for r in evals)
    best_step = max(evals, key=lambda r: r["recall"])["step"]  # the first metric decides
    best = evald.path / "checkpoints" / "best.pt"
    assert torch.load(best, weights_only=True)["step"] == best_step
    # Evaluating draws no random numbers from the run: both end with the same weights, bit for bit.
    a, b = (torch.load(r.path / "checkpoints" / "latest.pt", weights_only=True) for r in (plain, evald))
    assert all(torch.equal(a["generator"][k], b["generator"][k]) for k in a["generator"])
    assert all(torch.equal(a["discriminator"][k], b["discriminator"][k]) for k in a["discriminator"])


def test_evaluate_cli_writes_metrics_json(tmp_path, capsys):
    run = train(Config(dataset="digits", steps=4, ngf=4, ndf=4, out=str(tmp_path / "run")), progress=False)
    assert main(["evaluate", str(run.path), "--n", "200", "--metrics", "fid,pr", "--features", "classifier"]) == 0
    out = capsys.readouterr().out
    assert "features: classifier" in out and "fid" in out and "recall" in out
    saved = json.loads((run.path / "metrics.json").read_text())
    assert saved["classifier"]["n"] == 200 and saved["classifier"]["checkpoint"] == "generator.safetensors"


@pytest.mark.parametrize("args, message", [
    (["--metrics", "fid,bogus"], "--metrics: unknown metric bogus"),
    (["--checkpoint", "999"], "--checkpoint:"),
    (["--n", "1"], "--n must be at least 2"),
])
def test_evaluate_cli_errors(tmp_path, capsys, args, message):
    run = train(Config(dataset="digits", steps=2, ngf=4, ndf=4, out=str(tmp_path / "run")), progress=False)
    assert main(["evaluate", str(run.path), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_eval_config_is_validated(tmp_path):
    from ganforge.errors import ConfigError

    with pytest.raises(ConfigError, match="--eval-metrics: unknown metric fd"):  # before the run directory
        train(Config(eval_metrics=["fd"], out=str(tmp_path / "run")), progress=False)
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="--eval-every must be at least 1"):
        Config(eval_every=0)


def test_evaluator_train_cli(capsys):
    assert main(["evaluator", "train", "--dataset", "digits"]) == 0
    out = capsys.readouterr().out
    assert "digits classifier, test accuracy" in out


@pytest.mark.slow
def test_a_folder_classifier_is_keyed_by_its_images(tmp_path, capsys):
    """Colour folders of the same size and class count still get their own classifier each."""
    from .helpers import save_image

    rng = np.random.default_rng(0)
    for folder in ("a", "b"):
        for cls in ("red", "blue"):
            for i in range(6):
                save_image(tmp_path / folder / cls / f"{i}.png", rng.integers(0, 256, (20, 20, 3), dtype=np.uint8))
    paths = []
    for folder in ("a", "b", "a"):
        assert main(["evaluator", "train", "--dataset", "folder", "--data-dir", str(tmp_path / folder),
                     "--image-size", "16"]) == 0
        paths.append(capsys.readouterr().out.split(":")[0])
    assert paths[0] == paths[2] != paths[1] and "folder-16px-" in paths[0]
    model, _ = classifier.load_classifier(Path(paths[0]))
    assert model.init_kwargs["channels"] == 3 and model.init_kwargs["num_classes"] == 2


def test_unlabelled_data_has_no_classifier(tmp_path):
    from ganforge.errors import DataError
    from ganforge.metrics.classifier import train_classifier

    data = load_dataset("digits")
    from dataclasses import replace

    with pytest.raises(DataError, match="use --features inception"):
        train_classifier(replace(data, labels=None))


def test_resumed_run_remembers_its_best(tmp_path):
    opts = dict(dataset="digits", ngf=4, ndf=4, checkpoint_every=4, eval_every=4, eval_n=200, eval_metrics=["fid"])
    run = train(Config(out=str(tmp_path / "run"), steps=8, **opts), progress=False)
    rows = run.rows()
    best_before = min(r["fid"] for r in rows if "fid" in r)
    train(Config(out=str(run.path), steps=12, **opts), resume=run.path, progress=False)
    rows = run.rows()
    evals = {r["step"]: r["fid"] for r in rows if "fid" in r}
    assert sorted(evals) == [4, 8, 12]
    best_step = min(evals, key=evals.get)
    best = torch.load(run.path / "checkpoints" / "best.pt", weights_only=True)
    assert best["step"] == best_step and min(evals.values()) <= best_before


def test_training_rows_equal_evaluate_of_that_checkpoint(tmp_path):
    from ganforge.metrics.evaluate import evaluate_run

    run = train(Config(dataset="digits", steps=6, ngf=4, ndf=4, eval_every=6, eval_n=300, eval_metrics=["fid", "pr"],
                       seed=5, out=str(tmp_path / "run")), progress=False)
    row = run.rows()[-1]
    again = evaluate_run(run.path, n=300, metrics="fid,pr", features="classifier", checkpoint="6")
    assert abs(row["fid"] - again["fid"]) < 1e-6 and abs(row["recall"] - again["recall"]) < 1e-9


def test_a_samples_file_is_scored_as_given(tmp_path, capsys):
    from ganforge.metrics.evaluate import evaluate_samples

    run = train(Config(dataset="digits", steps=2, ngf=4, ndf=4, conditional=True, out=str(tmp_path / "run")),
                progress=False)
    # Real test digits with their own labels score as real data do; with the labels rolled, accuracy collapses.
    test = load_dataset("digits", split="test")
    np.savez(tmp_path / "real.npz", images=test.images, labels=test.labels)
    np.savez(tmp_path / "wrong.npz", images=test.images, labels=(test.labels + 1) % 10)
    real = evaluate_samples(run.path, tmp_path / "real.npz", "fid,pr", features="classifier")
    wrong = evaluate_samples(run.path, tmp_path / "wrong.npz", "fid", features="classifier")
    assert real["n"] == len(test) and real["fid"] < 5 and real["label_accuracy"] > 0.9 and real["recall"] > 0.8
    assert wrong["label_accuracy"] < 0.1 and wrong["fid"] == pytest.approx(real["fid"])

    # The CLI path: the file `ganforge sample` writes, labels included.
    assert main(["sample", str(run.path), "--n", "300", "--out", str(tmp_path / "s.npz")]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run.path), "--metrics", "fid", "--features", "classifier",
                 "--samples", str(tmp_path / "s.npz")]) == 0
    out = capsys.readouterr().out
    assert f"300 generated ({tmp_path / 's.npz'})" in out and "label_accuracy" in out
    assert not (run.path / "metrics.json").exists()  # a file's score is not the run's


@pytest.mark.parametrize("make, message", [
    (None, "--samples: {path} is not a file"),
    (lambda: np.zeros((4, 16, 16, 1), np.uint8), "{path}: the images are 1×16px but the reference data are 1×8px"),
    (lambda: np.zeros((4, 8, 8, 1), np.float32), "{path}: images must be uint8"),
])
def test_a_bad_samples_file_is_named(tmp_path, capsys, make, message):
    run = train(Config(dataset="digits", steps=2, ngf=4, ndf=4, out=str(tmp_path / "run")), progress=False)
    path = tmp_path / "s.npz"
    if make is not None:
        np.savez(path, images=make())
    assert main(["evaluate", str(run.path), "--features", "classifier", "--samples", str(path)]) == 2
    err = capsys.readouterr().err
    assert message.format(path=path) in err and err.count("\n") == 1


def test_a_channels_run_is_scored_against_its_own_channels(tmp_path):
    """--channels 3 on the gray digits: evaluation compares with RGB copies of them, which the digits' classifier
    reads as the gray images they are, so RGB copies of real digits score exactly as the gray ones do."""
    from ganforge.metrics.evaluate import evaluate_run, evaluate_samples

    opts = dict(dataset="digits", steps=2, ngf=4, ndf=4)
    gray = train(Config(out=str(tmp_path / "gray"), **opts), progress=False)
    rgb = train(Config(out=str(tmp_path / "rgb"), channels=3, **opts), progress=False)
    test = load_dataset("digits", split="test")
    np.savez(tmp_path / "gray.npz", images=test.images)
    np.savez(tmp_path / "rgb.npz", images=np.repeat(test.images, 3, axis=1))
    as_gray = evaluate_samples(gray.path, tmp_path / "gray.npz", "fid", features="classifier")
    as_rgb = evaluate_samples(rgb.path, tmp_path / "rgb.npz", "fid", features="classifier")
    assert as_rgb["fid"] == pytest.approx(as_gray["fid"]) and as_rgb["fid"] < 5
    assert np.isfinite(evaluate_run(rgb.path, n=200, metrics="fid", features="classifier")["fid"])
