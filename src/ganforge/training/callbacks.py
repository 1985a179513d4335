"""What runs beside the training step: each part of a training that is not the step itself is a ``Callback``.

The trainer calls every callback's hooks in order: ``on_start``; ``on_step`` after each step; ``on_row`` when a
metrics.jsonl row is about to be written (a callback may add to it, as the alarms do); ``on_checkpoint`` after
each checkpoint; ``on_end`` when training stops. ``trainer.default_callbacks`` builds the ones every run has; a
caller's own (``train(config, callbacks=[...])``) run after them, which is how benchmarks and tests watch a
training.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import torch
from tqdm import tqdm

from ..errors import TrainingDiverged
from ..report import write_report
from ..run import is_training_row
from .hardware import hardware_info

if TYPE_CHECKING:
    from .trainer import Trainer

log = logging.getLogger("ganforge")

REPORT_SHARE = 0.01  # at most this fraction of the training time goes to refreshing report.html


class Callback:
    """Hooks the trainer calls; each does nothing unless a subclass overrides it."""

    def on_start(self, trainer: Trainer) -> None:
        pass

    def on_step(self, trainer: Trainer, stats: dict[str, torch.Tensor]) -> None:
        pass

    def on_row(self, trainer: Trainer, row: dict[str, Any]) -> None:
        pass

    def on_checkpoint(self, trainer: Trainer) -> None:
        pass

    def on_end(self, trainer: Trainer) -> None:
        pass


def boundary(trainer: Trainer) -> bool:
    """A step that ends with a checkpoint or an evaluation, before which the rows so far are written (so a
    resumed run's rows are the straight run's, and an evaluation row follows the statistics before it)."""
    cfg, step = trainer.config, trainer.step
    return step % cfg.checkpoint_every == 0 or (cfg.eval_every is not None and step % cfg.eval_every == 0)


class StepRows(Callback):
    """Averages the steps' statistics into one metrics.jsonl row every ``--log-every`` steps (and before a
    checkpoint or an evaluation), across processes, and stops a run whose loss became non-finite."""

    def __init__(self) -> None:
        self.window: list[torch.Tensor] = []  # one row of step statistics per step, in the order of ``names``
        self.names: tuple[str, ...] = ()
        self.since = (time.perf_counter(), 0)  # (clock, step) when the window began

    def on_start(self, trainer: Trainer) -> None:
        self.since = (time.perf_counter(), trainer.step)

    def on_step(self, trainer: Trainer, stats: dict[str, torch.Tensor]) -> None:
        self.names = self.names or tuple(stats)
        self.window.append(torch.stack(list(stats.values())))
        if trainer.step % trainer.config.log_every == 0 or boundary(trainer):
            self.flush(trainer)

    def on_end(self, trainer: Trainer) -> None:
        self.flush(trainer)

    def flush(self, trainer: Trainer) -> None:
        if not self.window:
            return
        stats = trainer.world.mean(torch.stack(self.window)).cpu()  # every rank sees (and logs) the global means
        bad = (~torch.isfinite(stats)).any(1).nonzero()
        if len(bad):
            losses = {k: v for k, v in zip(self.names, stats[bad[0]].flatten().tolist(), strict=True)
                      if k.startswith("loss")}
            raise TrainingDiverged(
                f"a loss became non-finite at step {self.since[1] + int(bad[0]) + 1} "
                f"({', '.join(f'{k}={v}' for k, v in losses.items())}); the last good checkpoint is "
                f"{trainer.run.latest}. Lower the learning rates or try --loss hinge.")
        now, cfg = time.perf_counter(), trainer.config
        images = len(self.window) * cfg.batch_size * trainer.world.world_size * cfg.d_steps
        trainer.write_row({
            "step": trainer.step, "epoch": round(trainer.batcher.epoch_float, 4),
            "seconds": round(trainer.seconds(), 3), "img_per_s": round(images / max(now - self.since[0], 1e-9), 1),
            **dict(zip(self.names, stats.mean(0).tolist(), strict=True)),
        })
        self.window, self.since = [], (now, trainer.step)


class ProgressBar(Callback):
    """The live progress line: steps, losses, img/s, the time left of --time-limit and any alarm."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: tqdm | None = None

    def on_start(self, trainer: Trainer) -> None:
        self.bar = tqdm(total=trainer.config.budget_steps(), initial=trainer.step, disable=not self.enabled,
                        unit="step", dynamic_ncols=True, desc=trainer.run.path.name)

    def on_step(self, trainer: Trainer, stats: dict[str, torch.Tensor]) -> None:
        assert self.bar is not None
        self.bar.update(1)

    def on_row(self, trainer: Trainer, row: dict[str, Any]) -> None:
        if self.bar is None or not is_training_row(row):
            return
        extra = {"alarm": row["alarm"]} if row.get("alarm") else {}
        if trainer.config.time_limit is not None:  # the bar's own ETA only knows about --steps
            extra["left"] = f"{max(0.0, trainer.config.time_limit - row['seconds']):.0f}s"
        self.bar.set_postfix(d=f"{row['loss_d']:.3f}", g=f"{row['loss_g']:.3f}", img_s=f"{row['img_per_s']:.0f}",
                             **extra, refresh=False)

    def on_end(self, trainer: Trainer) -> None:
        if self.bar is not None:
            self.bar.close()


class SampleGrids(Callback):
    """samples/step-N.png: the EMA generator on the same fixed latents every ``--sample-every`` steps, and at
    the end (also when a run resumed at its end: a kill may have come before its last grid)."""

    def on_step(self, trainer: Trainer, stats: dict[str, torch.Tensor]) -> None:
        if trainer.step % trainer.config.sample_every == 0:
            trainer.save_samples()

    def on_end(self, trainer: Trainer) -> None:
        trainer.save_samples()


class Checkpoints(Callback):
    """A checkpoint every ``--checkpoint-every`` steps; at the end a last one (when the run moved) and the
    exported EMA generator, generator.safetensors."""

    def __init__(self, start_step: int) -> None:
        self.saved = start_step  # the step of the newest checkpoint (a resumed run starts from one)

    def on_step(self, trainer: Trainer, stats: dict[str, torch.Tensor]) -> None:
        if trainer.step % trainer.config.checkpoint_every == 0:
            trainer.save()

    def on_checkpoint(self, trainer: Trainer) -> None:
        self.saved = trainer.step

    def on_end(self, trainer: Trainer) -> None:
        if trainer.step != self.saved or not trainer.run.latest.exists():
            trainer.save()
        trainer.export()


class Report(Callback):
    """hardware.json (an entry per start or resume) and report.html, refreshed after each checkpoint unless
    refreshing would take more than ``REPORT_SHARE`` of the time since the last refresh, and at the end.
    ``refreshes`` holds each refresh's (wall, CPU) seconds."""

    def __init__(self, trainer: Trainer) -> None:
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.hardware: dict[str, Any] | None = {"from_step": trainer.step, "started": started,
                                                **hardware_info(trainer.device, trainer.world.world_size)}
        self.last_refresh, self.refresh_cost = time.perf_counter(), 0.0
        self.refreshes: list[tuple[float, float]] = []

    def on_checkpoint(self, trainer: Trainer) -> None:
        if self.refresh_cost <= REPORT_SHARE * (time.perf_counter() - self.last_refresh):
            self.refresh(trainer)

    def on_end(self, trainer: Trainer) -> None:
        self.refresh(trainer)

    def refresh(self, trainer: Trainer) -> None:
        t0, cpu = time.perf_counter(), time.process_time()
        try:
            if self.hardware is not None:
                trainer.run.record_hardware(self.hardware)
                self.hardware = None
            write_report(trainer.run)
        except Exception as e:  # a report is never worth a training run
            log.warning("could not write %s: %s: %s", trainer.run.report, type(e).__name__, e)
        self.last_refresh = time.perf_counter()
        self.refresh_cost = self.last_refresh - t0
        self.refreshes.append((self.refresh_cost, time.process_time() - cpu))


__all__ = ["REPORT_SHARE", "Callback", "Checkpoints", "ProgressBar", "Report", "SampleGrids", "StepRows"]
