"""torchrun on CPU (gloo): 2 processes match 1 process with the same global batch, write one run
directory, and a 2-process checkpoint resumes on 1 process.

The comparison is exact in principle: with --sync-bn every BatchNorm normalises by the global batch's
statistics, each rank draws the global batch's latents and keeps its slice, and its data shard is a
strided share of the same global batch. What remains is float rounding (sums in another order), so
weights must agree to TOL, while one step of Adam at the test's learning rate moves them by ~LR.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import ganforge
from ganforge.checkpoint import load_checkpoint
from ganforge.errors import RunError
from ganforge.run import Run, _keep_global_batch

SRC = Path(__file__).resolve().parents[1] / "src"
LR = 2e-3
TOL = 2e-5  # float rounding only; a wrong shard, latent slice or BatchNorm statistic moves weights by ~LR
OPTIONS = dict(dataset="digits", model="dcgan", ngf=8, ndf=8, z_dim=16, lr_g=LR, lr_d=LR, log_every=2,
               sample_every=100, checkpoint_every=4, keep_checkpoints=5, amp="off", sync_bn=True, device="cpu")
# The ResNet family with R3GAN's schedules and InfoGAN codes (no BatchNorm: no statistics to share).
RESNET = dict(OPTIONS, preset="r3gan", model="resnet", widths="8", blocks=1, cardinality=2, r1_every=2, sync_bn=False,
              codes="cat:3,cont:1")
RESNET.pop("ngf"), RESNET.pop("ndf")


def _flags(options: dict) -> list[str]:
    out = []
    for k, v in options.items():
        flag = "--" + k.replace("_", "-")
        out += [flag] if v is True else [f"--no-{flag[2:]}"] if v is False else [flag, str(v)]
    return out


def _torchrun(cwd: Path, nproc: int, **options) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--standalone",
           "-m", "ganforge", "train", "--no-progress", *_flags(options)]
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(path)
    return {f"{part}.{k}": v for part in ("generator", "discriminator", "ema") for k, v in state[part].items()}


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


def _losses(run: Path) -> list[list[float]]:
    rows = Run.open(run).rows()
    return [[r["step"], r["loss_d"], r["loss_g"]] for r in rows]


@pytest.mark.slow
def test_two_processes_match_one_and_resume_on_one(tmp_path):
    # Reference: one process, global batch 16, 6 steps (a checkpoint at step 4).
    single = ganforge.train(ganforge.Config(**OPTIONS, batch_size=16, steps=6, out=str(tmp_path / "single")),
                            progress=False)
    # Two processes of 8 for 4 steps, with no --out: rank 0 alone must pick and create the directory.
    _torchrun(tmp_path, 2, **OPTIONS, batch_size=8, steps=4)
    runs = list((tmp_path / "runs").iterdir())
    assert [p.name for p in runs] == ["digits-dcgan"], "exactly one run directory"
    ddp = runs[0]
    assert ganforge.Config.load(ddp / "config.yaml").batch_size == 8
    assert load_checkpoint(ddp / "checkpoints" / "latest.pt")["world_size"] == 2

    at4 = _tensors(single.path / "checkpoints" / "step-00000004.pt")
    at6 = _tensors(single.path / "checkpoints" / "step-00000006.pt")
    assert _max_diff(at4, at6) > 100 * TOL  # the weights really move between steps: the comparison bites
    assert _max_diff(_tensors(ddp / "checkpoints" / "latest.pt"), at4) < TOL
    for (s1, d1, g1), (s2, d2, g2) in zip(_losses(ddp), _losses(single.path), strict=False):
        assert s1 == s2 and abs(d1 - d2) < 1e-5 and abs(g1 - g2) < 1e-5

    # Resume the 2-process run on 1 process: it keeps the global batch (16 per process now).
    config = Run.open(ddp).config.replace(steps=6)
    resumed = ganforge.train(config, resume=ddp, progress=False)
    assert resumed.step == 6
    assert ganforge.Config.load(ddp / "config.yaml").batch_size == 16
    assert _max_diff(_tensors(ddp / "checkpoints" / "latest.pt"), at6) < TOL


@pytest.mark.slow
def test_two_processes_match_one_for_resnet_under_schedules(tmp_path):
    """The ResNet family with R3GAN's schedules of lr, beta2 and gamma, and InfoGAN codes: every process takes the
    same values and the same slice of the global batch's codes."""
    single = ganforge.train(ganforge.Config.from_dict(RESNET, {"batch_size": 16, "steps": 6,
                                                               "out": str(tmp_path / "single")}), progress=False)
    _torchrun(tmp_path, 2, **RESNET, batch_size=8, steps=6, out=str(tmp_path / "ddp"))
    for step in (4, 6):
        name = f"step-{step:08d}.pt"
        assert _max_diff(_tensors(tmp_path / "ddp" / "checkpoints" / name), _tensors(single.checkpoints / name)) < TOL
    at4, at6 = (_tensors(single.checkpoints / f"step-{s:08d}.pt") for s in (4, 6))
    assert _max_diff(at4, at6) > 100 * TOL


def test_resume_on_a_world_size_that_does_not_divide_the_global_batch_is_refused():
    config = ganforge.Config(batch_size=8)
    assert _keep_global_batch(config, {"world_size": 2}, 4).batch_size == 4
    assert _keep_global_batch(config, {"world_size": 2}, 1).batch_size == 16
    assert _keep_global_batch(config, {}, 1) is config  # checkpoints from before torchrun support
    with pytest.raises(RunError, match="global batch 16 .* on 3 processes"):
        _keep_global_batch(config, {"world_size": 2}, 3)


@pytest.mark.slow
def test_only_rank_0_evaluates(tmp_path, monkeypatch):
    """Under torchrun one process scores the samples: metrics.jsonl gets one row per evaluation, and best.pt
    and the real-data statistics are written once."""
    features = tmp_path / "features.pt"
    torch.jit.script(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 8))).save(str(features))
    env_cache = tmp_path / "cache"
    monkeypatch.setenv("GANFORGE_DATA", str(env_cache))  # the processes' own cache: what they write is theirs
    _torchrun(tmp_path, 2, **OPTIONS, batch_size=8, steps=4, eval_every=2, eval_n=64, eval_metrics="fid",
              eval_features=str(features), out=str(tmp_path / "run"))
    rows = Run.open(tmp_path / "run").rows()
    evals = [r["step"] for r in rows if "fid" in r]
    assert evals == [2, 4]
    assert (tmp_path / "run" / "checkpoints" / "best.pt").is_file()
    assert len(list((env_cache / "stats").glob("*.npz"))) == 1 and not list((env_cache / "stats").glob(".*"))
