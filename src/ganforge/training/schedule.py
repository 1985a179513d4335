"""Hyperparameters that move over a run: the learning rates, Adam's β2 and the R1/R2 weight γ along a cosine
from their start values (``--lr-g``/``--lr-d``, ``--beta2``, ``--r1-gamma``) to their ends (``--lr-end``,
``--beta2-end``, ``--r1-gamma-end``), as R3GAN schedules them (brownvc/R3GAN, train.py: lr 2e-4 -> 5e-5, γ
0.05 -> 0.005, β2 0.9 -> 0.99 on CIFAR-10). R3GAN runs its schedules over 20 M images; here the run's own
length is the horizon: its ``--steps``, else its ``--time-limit``, else its ``--epochs``.

A value is a function of the run's progress, which a checkpoint keeps (step, seconds, epoch), so a resumed run
takes the same values from there (bit for bit with a ``--steps`` budget; a clock is never bit-exact). A resume
that changes the budget changes the horizon: the schedules stretch over the new length (the run warns).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from .callbacks import Callback

if TYPE_CHECKING:
    from .trainer import Trainer

SYNC_EVERY = 8  # under torchrun a clock-based progress is agreed across processes every so many steps


def cosine(start: float, end: float, t: float) -> float:
    """``start`` at t = 0, ``end`` at t >= 1, along half a cosine (flat at both ends)."""
    return start + (end - start) * (1 - math.cos(math.pi * min(max(t, 0.0), 1.0))) / 2


class Schedule(Callback):
    """Sets the scheduled hyperparameters before the first step and after each step, for the next."""

    def __init__(self) -> None:
        self.progress = 0.0

    def on_start(self, trainer: Trainer) -> None:
        self.apply(trainer, agree=True)

    def on_step(self, trainer: Trainer, stats: Any) -> None:
        self.apply(trainer, agree=trainer.step % SYNC_EVERY == 0)

    def run_progress(self, trainer: Trainer, agree: bool) -> float:
        """How far the run is through its budget, 0..1: its steps, else its time limit, else its epochs. A clock
        differs between processes, so under torchrun they agree on it when ``agree`` and keep it between."""
        cfg = trainer.config
        if cfg.budget_steps() is not None:
            return trainer.step / cfg.budget_steps()
        if cfg.time_limit is not None:
            if trainer.world.enabled and not agree:
                return self.progress
            return trainer.world.max(trainer.seconds() / cfg.time_limit)
        return trainer.batcher.epoch_float / cfg.epochs

    def apply(self, trainer: Trainer, agree: bool) -> None:
        cfg = trainer.config
        self.progress = t = min(1.0, self.run_progress(trainer, agree))
        if cfg.lr_end is not None:
            factor = cosine(1.0, cfg.lr_end / cfg.lr_g, t)
            for opt, lr in ((trainer.opt_g, cfg.lr_g), (trainer.opt_d, cfg.lr_d)):
                for group in opt.param_groups:
                    group["lr"] = lr * factor
        if cfg.beta2_end is not None:
            beta2 = cosine(cfg.beta2, cfg.beta2_end, t)
            for opt in (trainer.opt_g, trainer.opt_d):
                for group in opt.param_groups:
                    group["betas"] = (cfg.beta1, beta2)
        if cfg.r1_gamma_end is not None:
            trainer.objective.set_r1_gamma(cosine(cfg.r1_gamma, cfg.r1_gamma_end, t))


__all__ = ["Schedule", "cosine"]
