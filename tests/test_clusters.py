"""Self-conditioning (--clusters K): k-means clusters of the training images stand in for labels."""

import time

import numpy as np
import pytest
import torch

import ganforge
from ganforge import Config, ConfigError, DataError, RunError
from ganforge.data.clusters import Clusters, clustered, fit_clusters, thumbnails
from ganforge.metrics import Evaluator, make_extractor
from ganforge.models import label_source
from ganforge.models.base import spread_classes
from ganforge.run import Run

from .helpers import tiny_config, weights


def planted(n: int = 90, size: int = 8, seed: int = 0) -> tuple[ganforge.ImageData, np.ndarray]:
    """Three kinds of image (dark, bright top half, bright left half) with noise, and which kind each is."""
    rng = np.random.default_rng(seed)
    kind = np.arange(n) % 3
    images = rng.integers(0, 40, (n, 1, size, size), dtype=np.uint8)
    images[kind == 1, :, : size // 2] += 200
    images[kind == 2, :, :, : size // 2] += 200
    labels = np.zeros(n, np.int64)  # the dataset's own labels: all one class, unrelated to the kinds
    return ganforge.ImageData(images, labels, "planted", ("all",)), kind


def test_thumbnails_are_at_most_16_pixels_a_side_in_0_1():
    for size, side in [(8, 8), (28, 14), (32, 16), (64, 16)]:
        x = thumbnails(np.full((2, 3, size, size), 255, np.uint8))
        assert x.shape == (2, 3 * side * side) and torch.allclose(x, torch.ones_like(x))


def test_clusters_recover_planted_kinds_and_replace_the_labels():
    data, kind = planted()
    clusters = fit_clusters(data, 3, seed=0)
    assert clusters.centroids.shape == (3, 64) and clusters.centroids.dtype == np.float32
    out = clustered(data, clusters)
    # Each kind is one cluster and each cluster one kind: a permutation of the planted labels.
    pairs = set(zip(kind.tolist(), out.labels.tolist(), strict=True))
    assert len(pairs) == 3 and len({c for _, c in pairs}) == 3
    assert out.class_names == ("cluster 0", "cluster 1", "cluster 2") and out.images is data.images
    # Assignment is by nearest centroid: the same images always land in the same clusters.
    assert np.array_equal(Clusters(clusters.centroids.copy()).assign(data.images), out.labels)
    with pytest.raises(DataError, match="--clusters 91: planted has only 90 images; give at most 90 clusters"):
        fit_clusters(data, 91)


def test_spread_classes_cycles_equal_weights_and_follows_unequal_ones():
    assert spread_classes([2, 5, 7], 7) == [2, 5, 7, 2, 5, 7, 2]
    assert spread_classes([2, 5, 7], 4, [3, 3, 3]) == [2, 5, 7, 2]
    out = spread_classes([0, 1, 2], 60, [6, 3, 1])
    assert np.bincount(out).tolist() == [36, 18, 6]
    # Evenly interleaved: after any number of draws every class is within one of its share.
    counts = np.zeros(3)
    for m, c in enumerate(out, 1):
        counts[c] += 1
        assert np.abs(counts - m * np.array([6, 3, 1]) / 10).max() < 1


def test_clusters_give_way_to_real_labels_and_to_packing():
    with pytest.raises(ConfigError, match="--clusters 1: one cluster tells G and D nothing"):
        Config(clusters=1)
    cases = [  # options, classes in the dataset -> what G and D take as labels
        (dict(clusters=20), 0, "clusters"),
        (dict(clusters=20), 10, "clusters"),
        (dict(clusters=20, label_assist=True), 10, "labels"),  # real labels beat clusters (docs/presets.md)
        (dict(clusters=20, label_assist=True), 0, "clusters"),  # no labels to assist with
        (dict(clusters=20, label_assist=True, classes=[3, 5]), 10, "clusters"),
        (dict(clusters=20, conditional=True), 10, "labels"),
        (dict(clusters=20, pack=2), 0, None),  # a pack has no one cluster
        (dict(), 0, None),
    ]
    for options, num_classes, source in cases:
        assert label_source(Config(**options), num_classes) == source, (options, num_classes)
    # The presets self-condition only the runs that use no labels.
    assert label_source(Config(preset="fast"), 10) == "labels"
    assert label_source(Config(preset="fast", label_assist=False), 10) == "clusters"
    assert label_source(Config(preset="color"), 10) == "clusters"
    assert label_source(Config(preset="color", conditional=True), 10) == "labels"


@pytest.mark.slow
def test_a_self_conditioned_run_trains_samples_and_evaluates_by_cluster(tmp_path):
    from ganforge.training.trainer import Trainer

    data, _ = planted(96)  # labelled, but with one class: label assist has nothing to show, clusters take over
    cfg = tiny_config(tmp_path, dataset="planted", clusters=3, preset="fast", ngf=8, ndf=8, steps=4)
    trainer = Trainer(cfg, Run.create(cfg), data=data, progress=False)
    sizes = np.bincount(trainer.data.labels, minlength=3).tolist()
    assert trainer.G.takes_labels and trainer.D.num_classes == 3 and trainer.G.cluster_sizes == sizes
    assert trainer.data_classes == [0] and trainer.train_classes == [0, 1, 2]
    assert trainer.fixed_labels.shape == (64,)  # one grid of 64 tiles, not a row per cluster
    assert all(torch.isfinite(v) for v in trainer.train_step().values())
    # Fake labels follow the clusters' sizes, as the data's mixture does.
    trainer.class_weights = torch.tensor([8.0, 1.0, 1.0])
    drawn = torch.cat([trainer._fake_inputs(64)[1] for _ in range(40)])
    assert 0.75 < (drawn == 0).float().mean() < 0.85

    run = ganforge.train(cfg.replace(out=str(tmp_path / "trained")), data=data, progress=False)
    G = ganforge.load_generator(run.path, device="cpu")
    assert G.cluster_sizes == sizes and G.classes == [0, 1, 2]
    from_checkpoint = ganforge.load_generator(run.path, checkpoint="latest", device="cpu")
    assert from_checkpoint.cluster_sizes == sizes
    arrays = np.load(ganforge.write_samples(G, 12, tmp_path / "s.npz"))
    # Saved as "clusters": a file of samples must not pass cluster ids off as the dataset's labels.
    assert "labels" not in arrays and arrays["clusters"].tolist() == spread_classes([0, 1, 2], 12, sizes)
    one = np.load(ganforge.write_samples(G, 4, tmp_path / "one.npz", label=2))["clusters"]
    assert one.tolist() == [2, 2, 2, 2]  # one cluster on request, as a class of a conditional G
    html = (run.path / "report.html").read_text()
    assert "self-conditioned (3 clusters)" in html and "Cluster sweep: one z per row" in html

    extractor = make_extractor("classifier", "digits", None, 8)
    digits = ganforge.load_dataset("digits", None, "train", 8)
    result = Evaluator(digits, extractor, ["fid"], n=60, cache=False)(G)
    assert np.isfinite(result["fid"]) and "label_accuracy" not in result  # cluster ids are no digits
    assert result["classes_expected"] == 10  # coverage counts the dataset's classes, not the clusters


def test_fitting_the_clusters_counts_against_the_time_limit(tmp_path, monkeypatch):
    from ganforge.training import trainer as trainer_module

    fit = trainer_module.fit_clusters

    def slow_fit(*args, **kwargs):
        time.sleep(0.3)
        return fit(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "fit_clusters", slow_fit)
    data, _ = planted(48)
    run = ganforge.train(tiny_config(tmp_path, dataset="planted", clusters=3, steps=None, time_limit=0.25), data=data,
                         progress=False)
    assert run.stopped_by == "time_limit" and run.step == 0  # the budget went on k-means
    assert (run.path / "generator.safetensors").is_file() and (run.path / "checkpoints" / "latest.pt").is_file()


def test_resume_keeps_the_clusters_and_is_bit_exact(tmp_path, monkeypatch):
    data, _ = planted(96)
    opts = dict(dataset="planted", clusters=3, checkpoint_every=100, sample_every=100)
    straight = ganforge.train(tiny_config(tmp_path / "a", steps=8, **opts), data=data, progress=False)
    half = ganforge.train(tiny_config(tmp_path / "b", steps=4, **opts), data=data, progress=False)

    def refit(*args, **kwargs):
        raise AssertionError("a resumed run fits its clusters again")

    monkeypatch.setattr("ganforge.training.trainer.fit_clusters", refit)
    cfg = Run.open(half.path).config.replace(steps=8)
    resumed = ganforge.train(cfg, data=data, resume=half.path, progress=False)
    a, b = weights(straight.path / "checkpoints" / "latest.pt"), weights(resumed.path / "checkpoints" / "latest.pt")
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]


def test_a_set_smaller_than_the_clusters_gets_as_many_clusters_as_images(tmp_path, caplog):
    data, _ = planted(12)
    run = ganforge.train(tiny_config(tmp_path, dataset="planted", clusters=20, batch_size=4, steps=2), data=data,
                         progress=False)
    assert "--clusters 20: planted has 12 images, so 12 clusters" in caplog.text
    G = ganforge.load_generator(run.path, device="cpu")
    assert len(G.cluster_sizes) == G.num_classes == 12 and sum(G.cluster_sizes) == 12
    assert G.classes == [c for c in range(12) if G.cluster_sizes[c]]  # empty clusters are never drawn
    cfg = Run.open(run.path).config.replace(steps=3)
    assert ganforge.train(cfg, data=data, resume=run.path, progress=False).step == 3


def test_a_checkpoint_without_clusters_is_refused_on_resume(tmp_path):
    from ganforge.checkpoint import load_checkpoint, save_checkpoint

    data, _ = planted(96)
    run = ganforge.train(tiny_config(tmp_path, dataset="planted", clusters=3, steps=2), data=data, progress=False)
    state = load_checkpoint(run.path / "checkpoints" / "latest.pt")
    state["clusters"] = None
    save_checkpoint(state, run.path / "checkpoints", 2, 10)
    cfg = Run.open(run.path).config.replace(steps=4)
    with pytest.raises(RunError, match="keeps no clusters for --clusters 3; start a new run instead"):
        ganforge.train(cfg, data=data, resume=run.path, progress=False)
