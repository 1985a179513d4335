"""R3GAN's schedules: the learning rates, Adam's beta2 and gamma move along a cosine over the run's own length."""

import math

import pytest
import torch

import ganforge
from ganforge.losses import R1
from ganforge.training.callbacks import Callback
from ganforge.training.schedule import cosine

from .helpers import tiny_config, weights

SCHEDULED = dict(loss="rpgan", r1_gamma=0.4, r1_gamma_end=0.1, r1_every=1, lr_g=1e-3, lr_d=2e-3, lr_end=2.5e-4,
                 beta1=0.0, beta2=0.9, beta2_end=0.99)


class Record(Callback):
    """What each step trained with: (step, G's lr, D's lr, beta2, the R1 weight)."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, float, float, float, float]] = []

    def on_step(self, trainer, stats) -> None:  # runs after the schedule set the next step's values
        r1 = next(t for t in trainer.objective.terms if type(t) is R1)
        self.seen.append((trainer.step, trainer.opt_g.param_groups[0]["lr"], trainer.opt_d.param_groups[0]["lr"],
                          trainer.opt_d.param_groups[0]["betas"][1], r1.weight))


def test_cosine_runs_from_start_to_end():
    assert cosine(1.0, 0.2, 0.0) == 1.0 and cosine(1.0, 0.2, 1.0) == pytest.approx(0.2)
    assert cosine(1.0, 0.2, 0.5) == pytest.approx(0.6) and cosine(1.0, 0.2, 7.0) == pytest.approx(0.2)


def test_the_values_follow_the_run_s_steps(tmp_path):
    record = Record()
    ganforge.train(tiny_config(tmp_path, steps=8, **SCHEDULED), progress=False, callbacks=[record])
    assert [s[0] for s in record.seen] == list(range(1, 9))
    for step, lr_g, lr_d, beta2, r1 in record.seen:
        t = step / 8
        assert lr_g == pytest.approx(cosine(1e-3, 2.5e-4, t)) and lr_d == pytest.approx(2 * lr_g)  # D in proportion
        assert beta2 == pytest.approx(cosine(0.9, 0.99, t)) and r1 == pytest.approx(cosine(0.4, 0.1, t) / 2)
    assert record.seen[-1][1] == pytest.approx(2.5e-4)


def test_resume_takes_the_same_values_bit_for_bit(tmp_path):
    cfg = dict(SCHEDULED, checkpoint_every=100, sample_every=100)
    straight = ganforge.train(tiny_config(tmp_path / "a", steps=8, **cfg), progress=False)
    half = ganforge.train(tiny_config(tmp_path / "b", steps=8, **cfg), progress=False, callbacks=[Stop(4)])
    assert half.step == 4
    resumed = ganforge.train(half.config, resume=half.path, progress=False)
    a, b = weights(straight.latest), weights(resumed.latest)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_time_limit_is_the_horizon_of_a_run_without_steps(tmp_path):
    record = Record()
    run = ganforge.train(tiny_config(tmp_path, steps=None, time_limit=1.5, **SCHEDULED), progress=False,
                         callbacks=[record])
    lrs = [s[1] for s in record.seen]
    # However few steps a loaded machine makes in the time, the last comes near the end of the horizon.
    assert run.stopped_by == "time_limit" and len(lrs) >= 2
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False)) and lrs[-1] < 0.5 * 1e-3


class Stop(Callback):
    """Stops the run after ``step`` steps as a signal would (a checkpoint, then the end)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step(self, trainer, stats) -> None:
        if trainer.step == self.step:
            trainer.request_stop()


def test_the_cosine_is_flat_at_both_ends():
    assert cosine(0.0, 1.0, 0.01) < 0.001 and cosine(0.0, 1.0, 0.99) > 0.999
    assert math.isclose(cosine(2.0, 2.0, 0.3), 2.0)


def test_r1_gamma_end_without_r1_is_refused_unless_a_preset_set_it():
    with pytest.raises(ganforge.ConfigError, match="--r1-gamma-end 0.1 with --r1-gamma 0: there is no R1"):
        ganforge.Config(r1_gamma_end=0.1)
    assert ganforge.Config.from_preset("r3gan", r1_gamma=0.0).r1_gamma_end == 0.005  # r3gan without its penalties


def test_a_resume_that_changes_the_budget_warns_that_the_schedules_follow_it(tmp_path, caplog):
    half = ganforge.train(tiny_config(tmp_path, steps=4, **SCHEDULED), progress=False)
    with caplog.at_level("WARNING", logger="ganforge"):
        ganforge.train(half.config.replace(steps=8), resume=half.path, progress=False)
    assert "--steps: the schedules" in caplog.text and "where the new budget puts this step" in caplog.text

