
import numpy as np
import pytest
import torch
from torch import nn

import ganforge
from ganforge import Config, ConfigError
from ganforge.augment import diff_augment
from ganforge.losses import DBatch, Mismatch, ModeSeeking
from ganforge.models import build_models
from ganforge.presets import PRESETS
from ganforge.run import Run
from ganforge.training.alarms import Alarms

from .helpers import tiny_config


def test_diff_augment_shapes_gradients_and_each_policy():
    x = torch.rand(6, 3, 16, 16, requires_grad=True)
    g = torch.Generator().manual_seed(0)
    y = diff_augment(x, ["color", "translation", "cutout"], g)
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    ones = torch.ones(4, 1, 8, 8)
    cut = diff_augment(ones, ["cutout"], g)
    zeros = (cut == 0).flatten(1).sum(1)
    assert ((zeros > 0) & (zeros <= 25)).all()  # a square of about half the side is blanked per image
    shifted = diff_augment(ones, ["translation"], g)
    assert shifted.shape == ones.shape and set(shifted.unique().tolist()) <= {0.0, 1.0}
    # Same generator state, same augmentation: it is a seeded, repeatable transform.
    a = diff_augment(x.detach(), ["translation"], torch.Generator().manual_seed(5))
    b = diff_augment(x.detach(), ["translation"], torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_translation_moves_content_by_whole_pixels():
    x = torch.zeros(64, 1, 8, 8)
    x[:, :, 4, 4] = 1.0
    y = diff_augment(x, ["translation"], torch.Generator().manual_seed(1))
    assert (y.flatten(1).sum(1) == 1).all()  # the dot stays inside (|shift| <= 1 at 8 px)
    positions = y.flatten(1).argmax(1)
    assert len(positions.unique()) > 1


def test_spectral_norm_replaces_batchnorm_in_d():
    _, D = build_models(Config(d_norm="spectral", ngf=4, ndf=4), 1, 28, 0)
    assert not [m for m in D.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(hasattr(m, "parametrizations") for m in D.modules() if isinstance(m, nn.Conv2d))
    _, D = build_models(Config(model="mlp", d_norm="spectral", d_hidden=[8]), 1, 8, 0)
    assert all(hasattr(m, "parametrizations") for m in D.modules() if isinstance(m, nn.Linear))


@pytest.mark.parametrize(
    "options",
    [
        dict(augment=["translation", "color", "cutout"], r1_gamma=1.0, r1_every=2),
        dict(d_norm="spectral", loss="hinge", instance_noise=0.1, noise_steps=4, conditional=True),
        dict(model="mlp", d_norm="spectral", augment=["translation"], label_smoothing=0.1, d_steps=2),
        dict(loss="wgan-gp", d_norm="none", gp_weight=5.0, lr_d=4e-4),
        dict(conditional=True, mode_seeking=0.5, model="mlp", mbstd=4),
        dict(mbstd=2, loss="hinge", d_norm="spectral"),
        dict(conditional=True, mismatch=0.5, mode_seeking=0.5, loss="hinge", d_norm="spectral", r1_gamma=1.0),
        dict(conditional=True, mismatch=1.0, model="mlp", loss="wgan-gp", d_norm="none"),
        dict(conditional=True, mismatch=1.0, classes=[2]),  # one class: no wrong label exists, nothing to add
        dict(pack=2, loss="hinge", d_norm="spectral", mbstd=2, augment=["translation"]),
        dict(pack=4, model="mlp", loss="rpgan", r1_gamma=1.0, r1_every=2),
        dict(pack=2, loss="wgan-gp", d_norm="none"),
    ],
)
def test_stabilisers_train_with_finite_losses(tmp_path, options):
    run = ganforge.train(tiny_config(tmp_path, **options), progress=False)
    rows = run.rows()
    assert len(rows) >= 3 and all(np.isfinite(r["loss_d"]) and np.isfinite(r["loss_g"]) for r in rows)
    G = ganforge.load_generator(run.path, device="cpu")
    labels = G.classes[:2] * 2 if options.get("conditional") else None  # its trained classes
    assert G.sample(len(labels or [0, 1]), labels=labels, seed=0).isfinite().all()


def test_minibatch_stddev_sees_repeated_images():
    from ganforge.models.base import minibatch_stddev

    distinct = torch.randn(8, 3, 2, 2)
    out = minibatch_stddev(distinct, 4)
    assert out.shape == (8, 4, 2, 2) and torch.equal(out[:, :3], distinct)
    assert (out[:, 3] > 0.1).all() and (out[:, 3] == out[:, 3, :1, :1]).all()  # one constant map per image
    repeated = torch.randn(2, 3).repeat(4, 1)  # groups are images i, i + 2, i + 4, i + 6: all alike
    assert minibatch_stddev(repeated, 4)[:, 3].max() < 1e-3
    assert minibatch_stddev(torch.randn(6, 5), 4).shape == (6, 6)  # 6 images: groups of 2
    for model in ("dcgan", "mlp"):
        _, D = build_models(Config(model=model, mbstd=4, ndf=4, d_hidden=[8]), 1, 28, 0)
        assert D(torch.randn(6, 1, 28, 28)).shape == (6,)


@pytest.mark.parametrize("model", ["dcgan", "mlp"])
def test_a_packed_discriminator_scores_consecutive_images_together(model):
    torch.manual_seed(0)
    _, D = build_models(Config(model=model, pack=2, ndf=4, d_hidden=[8], d_norm="none"), 3, 32, 0)
    D.eval()
    x = torch.randn(6, 3, 32, 32)
    scores = D(x)
    assert scores.shape == (3,)
    # Pack i is images 2i and 2i + 1 side by side: scoring it alone gives the same number.
    assert torch.allclose(D(x[2:4]), scores[1:2], atol=1e-5)
    assert not torch.allclose(D(x[[3, 2]]), scores[1:2], atol=1e-5)  # the order within a pack is seen
    with pytest.raises(ConfigError, match="packs of 2 images got a batch of 5"):
        D(x[:5])


def test_pack_options_are_checked_and_label_assist_gives_way(tmp_path):
    with pytest.raises(ConfigError, match="--pack 3: .* --batch-size must be a multiple of it, not 64"):
        Config(pack=3)
    with pytest.raises(ConfigError, match="--pack 2: .* drop --conditional or --pack"):
        Config(pack=2, conditional=True)
    run = ganforge.train(tiny_config(tmp_path, preset="fast", pack=2, steps=2), progress=False)
    G = ganforge.load_generator(run.path, device="cpu")
    assert not G.takes_labels  # digits are labelled, but a pack of images has no one label to show D
    saved = Run.open(run.path).config
    with pytest.raises(ganforge.RunError, match="--pack: checkpoint 2, config 1"):
        ganforge.train(saved.replace(pack=1, steps=4), resume=run.path, progress=False)


def test_mode_seeking_pairs_share_a_label(tmp_path):
    from ganforge.training.trainer import Trainer

    cfg = tiny_config(tmp_path, conditional=True, mode_seeking=0.5)
    trainer = Trainer(cfg, Run.create(cfg), progress=False)
    z, y = trainer._fake_inputs(8)
    assert torch.equal(y[:4], y[4:]) and not torch.equal(z[:4], z[4:])
    assert len(torch.unique(y)) > 1  # still a mix of classes across pairs


def test_presets_expand_in_full_and_flags_win(tmp_path):
    cfg = Config.from_preset("paper", steps=2, out=str(tmp_path / "p"), ngf=8, ndf=8)
    assert cfg.ema_decay == 0.0 and cfg.ngf == 8 and cfg.preset == "paper"
    run = ganforge.train(cfg, progress=False)
    saved = Run.open(run.path).config
    assert saved == cfg
    text = (run.path / "config.yaml").read_text()
    assert all(f"{k}:" in text for k in PRESETS["paper"])
    with pytest.raises(ConfigError, match="unknown preset 'best'"):
        Config.from_preset("best")
    with pytest.raises(ConfigError, match="--augment: 'flip' is not one of color, translation, cutout"):
        Config(augment=["flip"])


def test_alarms_need_a_sustained_condition():
    alarms = Alarms(patience=3, warmup_steps=100)
    assert all(alarms.update({"step": 50, "d_real": 1.0, "d_fake": 0.0}) is None for _ in range(5))
    saturated = {"d_real": 0.999, "d_fake": 0.001, "diversity": 1.0}
    healthy = {"d_real": 0.7, "d_fake": 0.3, "diversity": 0.9}
    assert alarms.update(saturated) is None and alarms.update(saturated) is None
    assert "D saturated" in alarms.update(saturated)
    assert alarms.update(healthy) is None
    collapsed = {**healthy, "diversity": 0.05}
    for _ in range(2):
        alarms.update(collapsed)
    assert "mode collapse" in alarms.update(collapsed)
    coverage = {**healthy, "classes_present": 2, "classes_expected": 10}
    for _ in range(2):
        alarms.update(coverage)
    assert "fewer than half the classes" in alarms.update(coverage)


def test_mismatched_pairs_get_a_wrong_label_from_the_training_classes(tmp_path):
    from ganforge.training.trainer import Trainer

    cfg = tiny_config(tmp_path, conditional=True, mismatch=0.5, classes=[1, 3, 5], batch_size=32)
    trainer = Trainer(cfg, Run.create(cfg), progress=False)
    real, labels = trainer.batcher.next()
    (mismatch,) = [t for t in trainer.objective.terms if isinstance(t, Mismatch)]
    labels_seen = lambda x, y: y  # noqa: E731  a "D" that returns the labels it is given
    seen = mismatch.negatives(DBatch(labels_seen, real, labels, real, None, real, labels, labels))
    assert seen.shape == (16,) and set(seen.tolist()) <= {1, 3, 5}
    assert (seen != labels[:16]).all()
    with pytest.raises(ConfigError, match="--mismatch must be in"):
        tiny_config(tmp_path, mismatch=1.5)


def test_resume_names_a_changed_mbstd(tmp_path):
    run = ganforge.train(tiny_config(tmp_path, mbstd=2, steps=2), progress=False)
    saved = Run.open(run.path).config
    with pytest.raises(ganforge.RunError, match="--mbstd: checkpoint 2, config 0"):
        ganforge.train(saved.replace(mbstd=0, steps=4), resume=run.path, progress=False)


def test_label_assist_trains_on_labels_without_mismatch_and_samples_every_class(tmp_path):
    from ganforge.training.trainer import Trainer

    cfg = tiny_config(tmp_path, label_assist=True, mode_seeking=0.5, mismatch=0.5, steps=2)
    trainer = Trainer(cfg, Run.create(cfg), progress=False)
    assert trainer.G.takes_labels and trainer.D.num_classes == 10  # G and D take the label
    assert all(torch.isfinite(v) for v in trainer.train_step().values())
    terms = [type(t) for t in trainer.objective.terms]
    assert terms == [ModeSeeking]  # --mismatch is for --conditional only: it trades variety for label fidelity
    run = ganforge.train(cfg.replace(out=str(tmp_path / "trained")), progress=False)
    G = ganforge.load_generator(run.path)
    labels = np.load(ganforge.write_samples(G, 20, tmp_path / "s.npz"))["labels"]
    assert sorted(set(labels.tolist())) == list(range(10)) and np.bincount(labels).max() == 2  # classes in turn


def test_label_assist_is_ignored_without_labels_and_resume_names_it(tmp_path):
    cfg = tiny_config(tmp_path, dataset="npz", label_assist=True, steps=2)
    G, D = build_models(cfg, 1, 8, 0)  # an unlabelled set: plain unconditional networks, no error
    assert not G.takes_labels and D.num_classes == 0
    G, _ = build_models(tiny_config(tmp_path, label_assist=True, classes=[3, 5]), 1, 8, 10)
    assert not G.takes_labels  # a class subset stays unconditional: sampling would cycle untrained classes
    run = ganforge.train(tiny_config(tmp_path, label_assist=True, steps=2), progress=False)
    saved = Run.open(run.path).config
    with pytest.raises(ganforge.RunError, match="--label-assist: checkpoint True, config False"):
        ganforge.train(saved.replace(label_assist=False, steps=4), resume=run.path, progress=False)


def test_alarms_read_d_outputs_in_the_units_of_the_loss(tmp_path):
    from ganforge.losses import LOSSES
    from ganforge.training.trainer import Trainer

    def sounding(loss, d_real, d_fake):
        alarms = Alarms(saturated=loss.saturated, failing=loss.failing, patience=1, warmup_steps=0)
        return alarms.update({"step": 1000, "d_real": d_real, "d_fake": d_fake, "diversity": 1.0})

    wgan, hinge = LOSSES["wgan-gp"](), LOSSES["hinge"]()
    assert sounding(wgan, 40.0, -40.0) is None and sounding(wgan, -40.0, 40.0) is None  # a critic has no scale
    assert sounding(hinge, 0.9, -0.9) is None  # a healthy hinge D: inside its margins
    assert "D saturated" in sounding(hinge, 1.5, -1.5)
    assert "D is failing" in sounding(hinge, -1.5, 1.5)
    # The trainer logs D's outputs as the loss defines them (raw logits for hinge, probabilities for BCE), and
    # its rows are judged in those units: a hinge D past both margins is saturated, one inside them is not.
    cfg = tiny_config(tmp_path, loss="hinge")
    trainer = Trainer(cfg, Run.create(cfg), progress=False)
    for step, (d_real, d_fake) in enumerate([(0.9, -0.9)] * 3 + [(1.5, -1.5)] * 3, start=600):
        trainer.write_row({"step": step, "loss_d": 0.0, "d_real": d_real, "d_fake": d_fake, "diversity": 1.0})
    alarms = [r.get("alarm") for r in trainer.run.training_rows()]
    assert alarms[:5] == [None] * 5 and "D saturated" in alarms[5]


def test_a_resumed_run_carries_on_its_alarm_streaks(tmp_path):
    from ganforge.training.trainer import Trainer

    run = ganforge.train(tiny_config(tmp_path, loss="hinge", steps=2), progress=False)
    saturated = {"loss_d": 0.0, "d_real": 1.5, "d_fake": -1.5, "diversity": 1.0}
    for step in (600, 601):  # two rows of a streak of three, then the run stops
        run.append_row({"step": step, **saturated})
    state = torch.load(run.latest, weights_only=False)
    state["step"] = 601
    torch.save(state, run.latest)
    trainer = Trainer(run.config, Run.open(run.path), state=state, progress=False)
    next(c for c in trainer.callbacks if isinstance(c, Alarms)).on_start(trainer)
    trainer.write_row({"step": 602, **saturated})  # the third: it sounds, as in a run never stopped
    assert "D saturated" in trainer.run.training_rows()[-1]["alarm"]


def test_class_collapse_sounds_on_evaluation_rows(tmp_path):
    from ganforge.training.trainer import Trainer

    alarms = Alarms(warmup_steps=0)
    train_row = {"step": 100, "d_real": 0.6, "d_fake": 0.4, "diversity": 0.9}
    eval_row = {"step": 100, "fid": 50.0, "classes_present": 3, "classes_expected": 10}
    assert alarms.update(train_row) is None
    assert "fewer than half the classes" in alarms.update(eval_row)  # one evaluation is evidence enough
    assert alarms.update(train_row) is None  # training rows carry no class counts: they say nothing of it
    assert "fewer than half the classes" in alarms.update(eval_row)
    # In a run: the trainer writes evaluation rows through the alarms into metrics.jsonl.
    cfg = tiny_config(tmp_path)
    trainer = Trainer(cfg, Run.create(cfg), progress=False)
    trainer.write_row({**eval_row, "step": 600})
    row = Run.open(tmp_path / "run").rows()[-1]
    assert "fewer than half the classes" in row["alarm"]
