"""Evaluation during training: every ``eval_every`` steps, a row of metrics for metrics.jsonl and the best
checkpoint kept as checkpoints/best.pt (ranked by the first of ``eval_metrics``). Rank 0 alone evaluates."""

from __future__ import annotations

import json
import logging
import math
from typing import Any, Protocol

import torch

from ..checkpoint import mark_best
from ..config import Config
from ..data import ImageData
from ..models import Generator
from ..runs import RunDir
from .evaluate import METRICS, Evaluator, jsonable
from .features import make_extractor

log = logging.getLogger("ganforge")


class _Trainer(Protocol):  # what the hook needs from the trainer
    step: int
    data_classes: list[int]

    def sampling_generator(self) -> Generator: ...

    def save(self, elapsed: float) -> Any: ...


class EvalHook:
    def __init__(self, config: Config, run: RunDir, data: ImageData, device: torch.device) -> None:
        self.run = run
        extractor = make_extractor(config.eval_features, config.dataset, config.data_dir, data.resolution,
                                   device=device)
        log.info("eval every %d steps: %s on %d samples, %s", config.eval_every, ",".join(config.eval_metrics),
                 config.eval_n, extractor.description)
        # Latent seed 0 whatever the run's seed, like `ganforge evaluate`: runs are scored on the same z, and
        # a row here equals `ganforge evaluate RUN --checkpoint STEP --n eval_n` for the same features.
        self.evaluator = Evaluator(data, extractor, config.eval_metrics, config.eval_n, seed=0)
        self.metric = METRICS[config.eval_metrics[0]]
        self.best: float | None = None
        self._resumed = False

    def _better(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        return value > self.best if self.metric.higher_is_better else value < self.best

    def _best_so_far(self) -> float | None:
        """On resume: the best value among the rows kept in metrics.jsonl (best.pt still points at it).

        Read at the first evaluation, after the trainer dropped rows logged past its checkpoint.
        """
        if not (self.run.metrics.is_file() and (self.run.checkpoints / "best.pt").is_file()):
            return None
        rows = (json.loads(line) for line in self.run.metrics.read_text().splitlines() if line.strip())
        values = [v for r in rows if isinstance(v := r.get(self.metric.primary), int | float) and math.isfinite(v)]
        if not values:
            return None
        return float(max(values) if self.metric.higher_is_better else min(values))

    def __call__(self, trainer: _Trainer, elapsed: float) -> dict[str, Any]:
        """Evaluate the trainer's sampling generator; returns the metrics.jsonl row (the trainer writes it)."""
        if not self._resumed:
            self.best, self._resumed = self._best_so_far(), True
        # Own RNG state: evaluating must not change what the run does next (bit-exact resume).
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):
            result = self.evaluator(trainer.sampling_generator(), trainer.data_classes or None)
        row = {"step": trainer.step, "seconds": round(elapsed, 3), **jsonable(result)}
        row.pop("features_detail")  # the log line at the start names the network in full
        value = result[self.metric.primary]
        improved = self._better(value)
        if improved:
            self.best = value
            if not (self.run.checkpoints / f"step-{trainer.step:08d}.pt").is_file():
                trainer.save(elapsed)
            mark_best(self.run.checkpoints, trainer.step)
        shown = ", ".join(f"{k} {result[k]:.4g}" for m in self.evaluator.metrics for k in METRICS[m].keys
                          if not k.endswith("_std"))
        log.info("eval step %d: %s%s", trainer.step, shown, "  (best)" if improved else "")
        return row
