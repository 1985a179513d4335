"""Speed options: how each resolves per device, that they keep resume exact, and GPU paths (skipped on CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import ganforge
from ganforge.checkpoint import load_checkpoint
from ganforge.cli import main
from ganforge.errors import ConfigError
from ganforge.training import performance
from ganforge.training.distributed import GlobalBatchNorm, convert_sync_bn, without_sync_bn

CPU = torch.device("cpu")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _tiny(tmp_path, name: str, **overrides) -> ganforge.Config:
    base = dict(dataset="digits", ngf=8, ndf=8, z_dim=16, batch_size=16, log_every=2, sample_every=100,
                checkpoint_every=100, device="cpu", out=str(tmp_path / name))
    return ganforge.Config(**{**base, **overrides})


@pytest.mark.parametrize("amx", [True, False])
def test_amp_auto_is_bf16_on_cpu_only_with_amx(monkeypatch, amx):
    monkeypatch.setattr(performance, "cpu_has_amx", lambda: amx)
    assert performance.resolve_amp("auto", CPU) == (torch.bfloat16 if amx else None)
    assert performance.resolve_amp("auto", CPU, "resnet") is None  # its grouped convolutions: faster in float32
    assert performance.resolve_amp("bf16", CPU, "resnet") == torch.bfloat16
    assert performance.resolve_amp("off", CPU) is None
    assert performance.resolve_amp("bf16", CPU) == torch.bfloat16  # asked for explicitly: runs, if slowly


def test_bf16_where_the_device_has_none_names_the_flag():
    with pytest.raises(ConfigError, match="--amp bf16: mps"):
        performance.resolve_amp("bf16", torch.device("mps"))


def test_channels_last_only_for_convolutions_and_where_it_helps():
    resolve = performance.resolve_channels_last
    assert resolve("auto", "dcgan", CPU) is True  # float32 on AVX2: 1.10x -> 1.18x the tutorial loop
    assert resolve("auto", "dcgan", torch.device("mps")) is False  # not measured there
    assert resolve("auto", "dcgan", torch.device("cuda")) is True
    assert resolve("on", "dcgan", CPU) is True
    assert resolve("off", "dcgan", CPU) is False
    assert resolve("on", "mlp", CPU) is False


def test_adam_is_fused_on_cpu():
    opt = performance.make_adam([nn.Parameter(torch.zeros(3))], 2e-4, (0.5, 0.999), CPU)
    assert opt.defaults["fused"] is True


def test_step_module_returns_float32_and_feeds_channels_last():
    seen = {}

    class Probe(nn.Module):
        def forward(self, x, y=None):
            seen["channels_last"] = x.is_contiguous(memory_format=torch.channels_last)
            return nn.functional.linear(x.flatten(1), torch.ones(1, x[0].numel()))

    step = performance.StepModule(Probe(), CPU, torch.bfloat16, channels_last=True)
    out = step(torch.randn(4, 3, 5, 5))
    assert out.dtype == torch.float32 and seen["channels_last"]


def test_bf16_channels_last_resume_is_bit_exact(tmp_path):
    straight = ganforge.train(_tiny(tmp_path, "a", steps=8, amp="bf16", channels_last="on"), progress=False)
    half = ganforge.train(_tiny(tmp_path, "b", steps=4, amp="bf16", channels_last="on"), progress=False)
    resumed = ganforge.train(_tiny(tmp_path, "b", steps=8, amp="bf16", channels_last="on"), resume=half.path,
                             progress=False)
    assert resumed.step == 8
    a = load_checkpoint(straight.path / "checkpoints" / "latest.pt")
    b = load_checkpoint(resumed.path / "checkpoints" / "latest.pt")
    for part in ("generator", "discriminator", "ema"):
        for k, v in a[part].items():
            assert torch.equal(v, b[part][k]), f"{part}.{k}"


def test_bf16_training_stays_close_to_float32(tmp_path):
    """Same seed, same data and latents: bf16 losses track float32's within a few percent over 10 steps."""
    rows = {}
    for amp in ("off", "bf16"):
        run = ganforge.train(_tiny(tmp_path, amp, steps=10, amp=amp), progress=False)
        rows[amp] = np.array([[r["loss_d"], r["loss_g"]] for r in run.rows()])
    assert np.abs(rows["bf16"] - rows["off"]).max() < 0.05


def test_cuda_graphs_without_cuda_is_a_one_line_error(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code = main(["train", "--cuda-graphs", "--device", "cpu", "--steps", "1", "--out", str(tmp_path / "r"),
                 "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("ganforge: error: --cuda-graphs needs a CUDA device")


def test_global_batchnorm_converts_and_reverts_with_the_same_state():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Linear(2, 2), nn.BatchNorm1d(2))
    net[1].running_mean.fill_(0.5)
    converted = convert_sync_bn(net)
    assert isinstance(converted[1], GlobalBatchNorm) and isinstance(converted[3], GlobalBatchNorm)
    x = torch.randn(8, 4, 5, 5)
    expected = nn.functional.batch_norm(x, None, None, converted[1].weight, converted[1].bias, training=True)
    assert torch.allclose(converted[1](x), expected, atol=1e-6)  # one process: plain BatchNorm
    plain = without_sync_bn(converted)
    assert type(plain[1]) is nn.BatchNorm2d and type(plain[3]) is nn.BatchNorm1d
    assert isinstance(converted[1], GlobalBatchNorm)  # the original is untouched
    assert torch.equal(plain[1].running_mean, converted[1].running_mean)


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("options", [dict(), dict(compile=True), dict(cuda_graphs=True)])
def test_gpu_training_with_speed_options(tmp_path, options):
    run = ganforge.train(_tiny(tmp_path, "gpu", steps=6, device="cuda", **options), progress=False)
    assert run.step == 6 and np.isfinite(run.last_row["loss_d"])
    if torch.cuda.is_bf16_supported():
        assert performance.resolve_amp("auto", torch.device("cuda")) == torch.bfloat16
