import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge import ConfigError, RunError, TrainingDiverged
from ganforge.checkpoint import load_checkpoint
from ganforge.losses import NonSaturatingBCE
from ganforge.run import Run
from ganforge.training.trainer import Trainer

from .helpers import tiny_config, tiny_data, weights

METRIC_KEYS = {"step", "epoch", "seconds", "img_per_s", "loss_d", "loss_g", "d_real", "d_fake"}


def check_run_dir(path, steps):
    run = Run.open(path)
    assert run.generator.is_file() and run.latest.is_file()
    assert (run.checkpoints / f"step-{steps:08d}.pt").is_file()
    rows = [json.loads(line) for line in run.metrics.read_text().splitlines()]
    assert rows and all(set(r) >= METRIC_KEYS for r in rows)
    assert all(np.isfinite([r["loss_d"], r["loss_g"], r["d_real"], r["d_fake"]]).all() for r in rows)
    assert rows[-1]["step"] == steps
    pngs = sorted(p.name for p in run.samples.iterdir())
    assert pngs[-1] == f"step-{steps:08d}.png"
    return rows


@pytest.mark.parametrize(
    ("model", "conditional", "loss"),
    [("dcgan", False, "bce"), ("dcgan", True, "hinge"), ("mlp", False, "lsgan"), ("mlp", True, "wgan-gp")],
)
def test_few_steps_per_family_write_a_complete_run(tmp_path, model, conditional, loss):
    cfg = tiny_config(tmp_path, model=model, conditional=conditional, loss=loss, label_smoothing=0.0)
    run = ganforge.train(cfg, progress=False)
    assert run.stopped_by == "steps" and run.step == 6
    check_run_dir(run.path, 6)
    G = ganforge.load_generator(run.path, device="cpu")
    assert not G.training and G.takes_labels == conditional
    labels = [1, 2] if conditional else None
    assert G.sample(2, labels=labels, seed=0).shape == (2, 1, 8, 8)


def test_conditional_grid_has_one_row_per_class(tmp_path):
    cfg = tiny_config(tmp_path, conditional=True, classes=[3, 5])
    run = ganforge.train(cfg, progress=False)
    grid = Image.open(run.path / "samples" / "step-00000006.png")
    tile = 32 + 2  # 8×8 upscaled to 32, 2 px padding
    assert grid.size == (8 * tile + 2, 2 * tile + 2)  # 8 columns, 2 classes


def test_train_on_custom_data_at_28(tmp_path):
    cfg = tiny_config(tmp_path, dataset="tiny", conditional=True, steps=2, log_every=1)
    run = ganforge.train(cfg, data=tiny_data(48, size=28), progress=False)
    assert ganforge.load_generator(run.path, device="cpu").resolution == 28



@pytest.mark.parametrize("model", ["dcgan", "mlp"])
def test_resume_is_bit_exact(tmp_path, model):
    opts = dict(model=model, d_dropout=0.2, conditional=True, checkpoint_every=100, sample_every=100)
    straight = ganforge.train(tiny_config(tmp_path / "a", steps=8, **opts), progress=False)
    half = ganforge.train(tiny_config(tmp_path / "b", steps=4, **opts), progress=False)
    cfg = Run.open(half.path).config.replace(steps=8)
    resumed = ganforge.train(cfg, resume=half.path, progress=False)
    assert resumed.step == 8
    a, b = weights(straight.path / "checkpoints" / "latest.pt"), weights(resumed.path / "checkpoints" / "latest.pt")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
    rows = [r["step"] for r in resumed.rows()]
    assert rows == sorted(set(rows))  # no duplicated steps after resume


def test_checkpoint_that_does_not_fit_says_what_differs(tmp_path):
    run = ganforge.train(tiny_config(tmp_path, steps=2), progress=False)
    cfg = Run.open(run.path).config.replace(ngf=16, steps=4)
    with pytest.raises(RunError, match="does not match the config: --ngf: checkpoint 8, config 16"):
        Trainer(cfg, Run.open(run.path), state=Run.open(run.path).load_checkpoint(), progress=False)


class ExplodingLoss(NonSaturatingBCE):
    def __init__(self, at_call):
        super().__init__()
        self.calls, self.at = 0, at_call

    def generator(self, fake, real=None):
        self.calls += 1
        loss = super().generator(fake)
        return loss * float("nan") if self.calls >= self.at else loss


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    cfg = tiny_config(tmp_path, steps=20, log_every=5, checkpoint_every=3)
    run = Run.create(cfg)
    trainer = Trainer(run.config, run, progress=False)
    trainer.objective.loss = ExplodingLoss(at_call=5)
    with pytest.raises(TrainingDiverged, match="non-finite at step 5"):
        trainer.fit()
    assert load_checkpoint(run.latest)["step"] == 3


def test_interrupted_save_never_corrupts_latest(tmp_path, monkeypatch):
    run = ganforge.train(tiny_config(tmp_path, steps=3), progress=False)
    before = (run.path / "checkpoints" / "latest.pt").read_bytes()

    def dying_save(obj, f, *a, **k):
        f.write(b"partial")
        raise KeyboardInterrupt  # the process dies mid-write

    rd = Run.open(run.path)
    trainer = Trainer(rd.config.replace(steps=6), rd, state=rd.load_checkpoint(), progress=False)
    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        trainer.save()
    assert (run.path / "checkpoints" / "latest.pt").read_bytes() == before
    assert load_checkpoint(rd.latest)["step"] == 3


def test_existing_run_is_never_overwritten(tmp_path):
    ganforge.train(tiny_config(tmp_path, steps=1), progress=False)
    with pytest.raises(RunError, match="already exists; continue it with --resume"):
        ganforge.train(tiny_config(tmp_path, steps=1), progress=False)


@pytest.mark.slow
def test_sigterm_checkpoints_and_exits_cleanly(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "ganforge", "train", "--out", str(out), "--steps", "100000", "--ngf", "8",
           "--ndf", "8", "--log-every", "1", "--device", "cpu", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ganforge.__path__[0].rsplit("/", 1)[0])}
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 60
    while not (out / "metrics.jsonl").exists() and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM" in err and "Traceback" not in err
    state = load_checkpoint(out / "checkpoints" / "latest.pt")
    assert 0 < state["step"] < 100000
    assert (out / "generator.safetensors").is_file()


def test_class_subset_run_samples_only_its_classes(tmp_path):
    """A --conditional --classes 3,5 run exports its trained classes: sampling, sweeps and evaluation use
    them, and other classes are refused with the reason."""
    from ganforge.latent import class_sweep
    from ganforge.sampling import resolve_labels

    run = ganforge.train(tiny_config(tmp_path, steps=2, conditional=True, classes=[3, 5]), progress=False)
    for checkpoint in (None, "latest"):  # generator.safetensors and the checkpoint agree
        G = ganforge.load_generator(run.path, checkpoint=checkpoint, device="cpu")
        assert G.num_classes == 10 and G.classes == [3, 5]
        assert resolve_labels(G, 4).tolist() == [3, 5, 3, 5]
        assert class_sweep(G, torch.zeros(2, G.z_dim)).shape[0] == 4  # two rows, one column per trained class
        with pytest.raises(ConfigError, match="class 7 is not one this generator was trained on"):
            resolve_labels(G, 4, label=7)
        with pytest.raises(ConfigError, match=r"trained on \(3, 5\)"):
            G.sample(2, labels=[3, 7])
