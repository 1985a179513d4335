"""The ResNet family (R3GAN): its layers as the paper lays them out, and everything the other families do."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ganforge
from ganforge import Config
from ganforge.checkpoint import load_checkpoint
from ganforge.errors import ConfigError
from ganforge.models import build_models
from ganforge.models.resnet import Downsample, ResidualBlock, ResNetDiscriminator, ResNetGenerator, Upsample

from .helpers import run_cli, tiny_config, tiny_data, weights

RESNET = dict(model="resnet", widths=[8], blocks=1, cardinality=2, loss="rpgan", r1_gamma=0.05)


@pytest.mark.parametrize(("resolution", "maps"), [(8, [4, 8]), (16, [4, 8, 16]), (28, [7, 14, 28]), (32, [4, 8, 16, 32])])
def test_stages_go_from_a_basis_to_the_image_and_back(resolution, maps):
    g = ResNetGenerator(16, 3, resolution, widths=[16, 8], blocks=2, cardinality=4)
    d = ResNetDiscriminator(3, resolution, widths=[16, 8], blocks=2, cardinality=4)
    assert g.basis.shape == (16, maps[0], maps[0]) and len(g.stages) == len(maps) == len(d.stages)
    x = g(torch.randn(5, 16))
    assert x.shape == (5, 3, resolution, resolution) and x.abs().max() <= 1
    feats = d.features(x)
    assert [f.shape[-1] for f in feats] == maps[::-1]  # largest map first, down to D's k×k
    assert [f.shape[1] for f in feats] == [8] * (len(maps) - 1) + [16]  # widths mirror G's; the last repeats
    assert d(x).shape == (5,)


def test_a_block_is_widen_grouped_narrow_and_starts_as_the_identity():
    block = ResidualBlock(16, cardinality=4, expansion=3, total_blocks=8)
    assert (block.widen.in_channels, block.widen.out_channels, block.widen.kernel_size) == (16, 48, (1, 1))
    assert (block.mix.groups, block.mix.kernel_size) == (4, (3, 3)) and block.narrow.out_channels == 16
    assert not block.narrow.weight.any()  # fix-up: the branch's last layer starts at zero
    x = torch.randn(2, 16, 5, 5)
    assert torch.equal(block(x), x)
    # The other two are He-initialised and scaled by L^(-1/4) for L blocks in the network.
    gain = math.sqrt(2 / 1.04) * 8 ** -0.25
    assert abs(block.widen.weight.std().item() - gain / math.sqrt(16)) < 0.2 * gain / math.sqrt(16)
    assert all(m.bias is None for m in block.modules() if isinstance(m, nn.Conv2d))  # biases sit in the activations


def test_no_normalisation_layers_anywhere():
    g, d = build_models(Config(model="resnet", widths=[8], conditional=True, d_norm="batch"), 3, 32, 10)
    norms = (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d)
    assert not [m for m in [*g.modules(), *d.modules()] if isinstance(m, norms)]


def test_resampling_is_low_pass_bilinear():
    x = torch.randn(2, 4, 8, 8)
    up = Upsample(4, 4)(x)
    assert torch.allclose(up[..., 1:-1, 1:-1], F.interpolate(x, scale_factor=2, mode="bilinear")[..., 1:-1, 1:-1],
                          atol=1e-6)
    flat = torch.full((1, 3, 8, 8), 0.7)
    assert torch.allclose(Downsample(3, 3)(flat)[..., 1:-1, 1:-1], torch.full((1, 3, 2, 2), 0.7))  # DC gain 1
    assert Downsample(4, 6)(x).shape == (2, 6, 4, 4) and Upsample(4, 2)(x).shape == (2, 2, 16, 16)


def test_the_conditional_d_projects_the_class():
    torch.manual_seed(0)
    d = ResNetDiscriminator(1, 8, widths=[8], blocks=1, cardinality=2, num_classes=3, embed_dim=4)
    x = torch.randn(4, 1, 8, 8)
    logits = {c: d(x, torch.full((4,), c)) for c in range(3)}
    assert not torch.allclose(logits[0], logits[1])
    h = d.head(d.basis(d.features(x)[-1]).flatten(1))
    assert torch.allclose(logits[2], (h * d.embed.weight[2]).sum(1), atol=1e-6)


def test_options_that_do_not_fit_are_refused():
    with pytest.raises(ConfigError, match="--d-dropout 0.2: the resnet family has no dropout"):
        Config(model="resnet", d_dropout=0.2)
    with pytest.raises(ConfigError, match="--widths must list positive channel counts"):
        Config(model="resnet", widths=[8, 0])
    with pytest.raises(ConfigError, match="resnet supports resolutions .* not 12"):
        build_models(Config(model="resnet"), 3, 12, 0)


@pytest.mark.parametrize("options", [dict(conditional=True), dict(label_assist=True), dict(clusters=3), dict()])
def test_it_trains_with_every_kind_of_label(tmp_path, options):
    run = ganforge.train(tiny_config(tmp_path, steps=4, **RESNET, **options), data=tiny_data(n=48), progress=False)
    assert all(np.isfinite(r["loss_d"]) and np.isfinite(r["loss_g"]) for r in run.training_rows())
    G = run.load_generator(device="cpu")
    assert G.family == "resnet" and G.takes_labels == bool(options)
    assert G.sample(6, labels=G.default_labels(6), seed=0).shape == (6, 1, 8, 8)


def test_resume_is_bit_exact_with_the_ema(tmp_path):
    cfg = dict(**RESNET, conditional=True, checkpoint_every=100, sample_every=100)
    straight = ganforge.train(tiny_config(tmp_path / "a", steps=8, **cfg), progress=False)
    half = ganforge.train(tiny_config(tmp_path / "b", steps=4, **cfg), progress=False)
    resumed = ganforge.train(half.config.replace(steps=8), resume=half.path, progress=False)
    a, b = weights(straight.latest), weights(resumed.latest)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any("ema." in k for k in a)


def test_bf16_autocast_and_channels_last(tmp_path):
    run = ganforge.train(tiny_config(tmp_path, steps=3, amp="bf16", channels_last="on", **RESNET), progress=False)
    assert all(np.isfinite(r["loss_d"]) for r in run.training_rows())
    state = load_checkpoint(run.latest)
    assert state["generator"]["stages.0.0.mix.weight"].dtype == torch.float32  # autocast keeps float32 weights


def test_explore_probe_evaluate_and_report_on_a_resnet_run(tmp_path, capsys):
    run = ganforge.train(tiny_config(tmp_path, steps=4, conditional=True, **RESNET), progress=False)
    path = str(run.path)
    for args in (["sample", path, "--n", "8", "--out", str(tmp_path / "s.png")],
                 ["interpolate", path, "--seeds", "1,2", "--label", "3", "--frames", "4",
                  "--out", str(tmp_path / "w.gif")],
                 ["arithmetic", path, "--plus", "1,2", "--minus", "3", "--label", "3", "--out", str(tmp_path / "a.png")],
                 ["sweep", path, "--seeds", "1,2", "--out", str(tmp_path / "sw.png")],
                 ["probe", path, "--train-size", "200", "--device", "cpu"],
                 ["evaluate", path, "--n", "100", "--metrics", "fid,pr", "--features", "classifier"],
                 ["report", path]):
        code, _, err = run_cli(capsys, *args)
        assert code == 0, (args, err)
    assert (run.path / "probe.json").is_file() and (run.path / "metrics.json").is_file()
    assert "resnet, conditional" in run.report.read_text()
