"""Evaluation during training: every ``--eval-every`` steps a row of metrics for metrics.jsonl, and the best
checkpoint kept as checkpoints/best.pt (ranked by the first of ``--eval-metrics``, in its own direction)."""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import torch

from ..checkpoint import mark_best
from ..data import ImageData
from ..metrics.evaluate import Evaluator, jsonable
from ..metrics.features import make_extractor
from ..metrics.registry import METRICS
from .callbacks import Callback

if TYPE_CHECKING:
    from .trainer import Trainer

log = logging.getLogger("ganforge")


class Evaluation(Callback):
    """Scores the trainer's sampling generator against ``reference``; rank 0 alone evaluates."""

    def __init__(self, trainer: Trainer, reference: ImageData) -> None:
        cfg = trainer.config
        extractor = make_extractor(cfg.eval_features, cfg.dataset, cfg.data_dir, reference.resolution,
                                   device=trainer.device)
        log.info("eval every %d steps: %s on %d samples, %s", cfg.eval_every, ",".join(cfg.eval_metrics), cfg.eval_n,
                 extractor.description)
        # Latent seed 0 whatever the run's seed, like `ganforge evaluate`: runs are scored on the same z, and
        # a row here equals `ganforge evaluate RUN --checkpoint STEP --n eval_n` for the same features.
        self.evaluator = Evaluator(reference, extractor, cfg.eval_metrics, cfg.eval_n, seed=0)
        self.metric = METRICS[cfg.eval_metrics[0]]
        # A resumed run's best so far, among the rows it kept (the trainer dropped those past its checkpoint).
        best = trainer.run.best(self.metric.name) if trainer.run.best_checkpoint.is_file() else None
        self.best: float | None = None if best is None else best[1]

    def on_step(self, trainer: Trainer, stats: Any) -> None:
        if trainer.step % trainer.config.eval_every == 0:
            trainer.write_row(self.evaluate(trainer))

    def evaluate(self, trainer: Trainer) -> dict[str, Any]:
        """The metrics.jsonl row of the generator as it is now; keeps best.pt pointing at the best one."""
        # Own RNG state: evaluating must not change what the run does next (bit-exact resume).
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):
            result = self.evaluator(trainer.sampling_generator(), trainer.data_classes or None)
        row = {"step": trainer.step, "seconds": round(trainer.seconds(), 3), **jsonable(result)}
        row.pop("features_detail")  # the log line at the start names the network in full
        value = result[self.metric.primary]
        improved = math.isfinite(value) and (self.best is None or self.metric.better(value, self.best))
        if improved:
            self.best = value
            if not trainer.run.checkpoint_file(trainer.step).is_file():
                trainer.save()
            mark_best(trainer.run.checkpoints, trainer.step)
        shown = ", ".join(f"{k} {result[k]:.4g}" for m in self.evaluator.metrics for k in METRICS[m].keys
                          if not k.endswith("_std"))
        log.info("eval step %d: %s%s", trainer.step, shown, "  (best)" if improved else "")
        return row
