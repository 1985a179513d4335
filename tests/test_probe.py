"""probe.py: pooled discriminator features, the linear probe and its baselines, probe.json, errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import ganforge
from ganforge import Config
from ganforge.cli import main
from ganforge.models.dcgan import DCGANDiscriminator
from ganforge.models.mlp import MLPDiscriminator
from ganforge.probe import extract_features, linear_probe, pooled_features, probe, random_discriminator

from .helpers import expect_error


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("probe") / "run"
    config = Config(dataset="digits", model="dcgan", ngf=4, ndf=8, steps=20, batch_size=32, log_every=10,
                    sample_every=100, checkpoint_every=100, seed=0, device="cpu", out=str(out))
    return str(ganforge.train(config, progress=False).path)


def test_dcgan_features_are_every_conv_layer_max_pooled_to_4x4():
    torch.manual_seed(0)
    d = DCGANDiscriminator(channels=1, resolution=28, ndf=4).eval()
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    with torch.no_grad():
        f = pooled_features(d, x)
        maps = d.features(x)  # (3, 4, 14, 14), (3, 8, 7, 7)
    assert f.shape == (3, 4 * 16 + 8 * 16)
    expected = torch.cat([F.adaptive_max_pool2d(m, 4).flatten(1) for m in maps], 1)
    assert torch.equal(f, expected)


def test_mlp_features_are_the_hidden_activations_and_ignore_the_label():
    torch.manual_seed(0)
    d = MLPDiscriminator(channels=1, resolution=8, hidden=[12, 6], num_classes=3, embed_dim=2).eval()
    x = torch.rand(5, 1, 8, 8)
    with torch.no_grad():
        f = pooled_features(d, x)
        zero = torch.zeros(5, dtype=torch.long)
        assert torch.equal(f, torch.cat(d.features(x, zero), 1))
    assert f.shape == (5, 18)


def test_extract_features_batches_give_the_same_answer():
    torch.manual_seed(0)
    d = DCGANDiscriminator(channels=1, resolution=8, ndf=4)
    images = np.random.default_rng(0).integers(0, 256, (7, 1, 8, 8), dtype=np.uint8)
    a, b = extract_features(d, images, batch_size=3), extract_features(d, images, batch_size=7)
    assert a.shape == (7, 64) and a.dtype == np.float32
    assert np.allclose(a, b, atol=1e-6)
    assert not d.training  # eval mode: BatchNorm uses its running statistics


def test_random_discriminator_has_the_architecture_but_fresh_weights():
    d = DCGANDiscriminator(channels=1, resolution=8, ndf=4)
    state = torch.get_rng_state()
    r1, r2 = random_discriminator(d, seed=3), random_discriminator(d, seed=3)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is untouched
    assert r1.init_kwargs == d.init_kwargs
    assert all(torch.equal(p, q) for p, q in zip(r1.parameters(), r2.parameters(), strict=True))
    assert not torch.equal(r1.blocks[0][0].weight, d.blocks[0][0].weight)


def test_linear_probe_separates_separable_classes():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    x = (rng.normal(size=(300, 5)) + 4 * np.eye(3, 5)[y]).astype(np.float32)
    acc = linear_probe(x[:200], y[:200], x[200:].copy(), y[200:])
    assert acc > 0.95


def test_probe_on_a_tiny_run_writes_probe_json(run):
    result = probe(run, train_size=600, device="cpu")
    saved = json.loads((ganforge.run.Run.open(run).path / "probe.json").read_text())
    assert saved == json.loads(json.dumps(result.to_dict()))
    assert saved["dataset"] == "digits" and saved["train_size"] == 600 and saved["test_size"] == 299
    assert saved["step"] == 20
    assert saved["discriminator"]["features"] == 8 * 16  # one 8-channel 4×4 map at 8×8 input
    assert saved["pixels"]["features"] == 64
    # Raw-pixel logistic regression on the digits is a known-good baseline (> 90 %); D features, trained
    # for 20 steps or not at all, are far above chance (10 %).
    assert saved["pixels"]["accuracy"] > 0.9
    for name in ("discriminator", "random_discriminator"):
        assert 0.5 < saved[name]["accuracy"] <= 1.0


def test_probe_cli_prints_the_three_numbers(run, capsys):
    assert main(["probe", run, "--train-size", "300", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    for name in ("trained discriminator", "untrained discriminator", "raw pixels"):
        assert name in out and "%" in out




def test_probe_errors(run, tmp_path, capsys):
    expect_error(capsys, ["probe", str(tmp_path)], "not a ganforge run")
    expect_error(capsys, ["probe", run, "--train-size", "0"], "--train-size", "1..1498")
    expect_error(capsys, ["probe", run, "--dataset", "nope"], "--dataset", "unknown dataset")
    expect_error(capsys, ["probe", run, "--checkpoint", "77"], "--checkpoint", "step-00000077.pt")
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(ganforge.run.Run.open(run).config_path, bare / "config.yaml")
    expect_error(capsys, ["probe", str(bare)], "no checkpoints/latest.pt")


def test_probe_refuses_a_packed_discriminator(tmp_path, capsys):
    config = Config(dataset="digits", ngf=4, ndf=4, steps=1, batch_size=16, pack=2, device="cpu",
                    out=str(tmp_path / "packed"))
    packed = str(ganforge.train(config, progress=False).path)
    expect_error(capsys, ["probe", packed], "scores packs of 2 images (--pack 2)", "does not apply")
