"""Train a recipe for a budget in a temporary directory, then score it through its run: what the quality
benchmarks share."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ganforge
from ganforge.data.npz import load_npz
from ganforge.metrics import METRICS, Evaluator, evaluate_run, make_extractor, parse_metrics
from ganforge.run import Run
from ganforge.sampling import write_samples
from ganforge.training.callbacks import Callback


def train(config: ganforge.Config, workdir: Path, name: str, seconds: float | None = None, steps: int | None = None,
          callbacks: Sequence[Callback] = (), data_dir: str | None = None) -> Run:
    """``config`` trained for ``seconds`` (or ``steps``) into ``workdir/name``, with no sample grids or periodic
    checkpoints to slow it down."""
    budget = dict(steps=steps, time_limit=None) if steps else dict(time_limit=seconds, steps=None)
    config = config.replace(out=str(workdir / name), sample_every=10**9, checkpoint_every=10**9, **budget,
                            **({"data_dir": data_dir} if data_dir else {}))
    return ganforge.train(config, progress=False, callbacks=callbacks)


def score(run: Run, metrics: str, n: int, save: Path | None = None, data_dir: str | None = None) -> dict[str, Any]:
    """The run's metrics on ``n`` samples in the domain classifier's features. With ``save``, the samples are
    written to that .npz first (as ``ganforge sample --out`` writes them) and that very file is scored (metrics
    that draw images of their own, such as ``codes``, then from the generator). ``data_dir``: score against these
    files rather than the run's own."""
    if save is None:
        return evaluate_run(run, n, metrics, features="classifier", data_dir=data_dir)
    names = parse_metrics(metrics)
    own = [m for m in names if METRICS[m].needs_generator]
    write_samples(run.load_generator(), n, save)
    reference = run.dataset("train", "reference", data_dir)
    files = [m for m in names if m not in own]
    out = score_images(reference, load_npz(save), str(save), ",".join(files), run.config.dataset,
                       data_dir or run.config.data_dir) if files else {}
    if own:
        extractor = make_extractor("classifier", run.config.dataset, data_dir or run.config.data_dir,
                                   reference.resolution)
        drawn = Evaluator(reference, extractor, own, n)(run.load_generator(), run.config.classes)
        out.update({k: v for k, v in drawn.items() if k not in out})
    return out


def score_images(reference: ganforge.ImageData, images: ganforge.ImageData, source: str, metrics: str,
                 dataset: str, data_dir: str | None) -> dict[str, Any]:
    """Images made earlier (or real held-out ones) scored against ``reference``."""
    extractor = make_extractor("classifier", dataset, data_dir, reference.resolution)
    return Evaluator(reference, extractor, metrics).score_images(images, source)
