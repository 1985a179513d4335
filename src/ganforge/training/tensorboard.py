"""TensorBoard event files for ``--tensorboard``: the metrics.jsonl rows, evaluations and sample grids.

Tags follow the usual names, so runs of ganforge sit beside other GAN code in one TensorBoard:
``Loss/D``, ``Loss/G``, ``D/real``, ``D/fake``, ``Speed/img_per_s``, ``Metrics/<name>`` and the image ``Samples``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from ..errors import ConfigError
from .callbacks import Callback

if TYPE_CHECKING:
    from .trainer import Trainer

# metrics.jsonl key -> TensorBoard tag
ROW_TAGS = {"loss_d": "Loss/D", "loss_g": "Loss/G", "d_real": "D/real", "d_fake": "D/fake",
            "img_per_s": "Speed/img_per_s", "diversity": "Stats/diversity", "epoch": "Stats/epoch"}
NOT_METRICS = ("step", "seconds", "n")  # numbers of a row that are neither statistics nor scores


def summary_writer() -> type:
    """torch's SummaryWriter, or the one-line reason it is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError('--tensorboard needs the tensorboard package: pip install "ganforge[tensorboard]"') from None
    return SummaryWriter


class TensorBoard(Callback):
    """A ``SummaryWriter`` on ``directory``: every metrics.jsonl row, and each sample grid the run writes.
    ``start_step``: the step a resumed run continues from; events logged past it by the interrupted attempt
    are hidden, as metrics.jsonl drops their rows."""

    def __init__(self, directory: Path, start_step: int = 0) -> None:
        self.writer = summary_writer()(str(directory), purge_step=start_step + 1 if start_step else None, flush_secs=30)
        self.image_step: int | None = None

    def on_row(self, trainer: Trainer, row: dict[str, Any]) -> None:
        self.row(row)

    def on_step(self, trainer: Trainer, stats: Any) -> None:
        if trainer.step % trainer.config.sample_every == 0:
            self.samples(trainer.run.sample_file(trainer.step), trainer.step)

    def on_end(self, trainer: Trainer) -> None:
        self.samples(trainer.run.sample_file(trainer.step), trainer.step)
        self.close()

    def row(self, row: dict[str, Any]) -> None:
        """A metrics.jsonl row: training statistics under their usual tags, evaluation scores as Metrics/."""
        step = row["step"]
        for key, value in row.items():
            if key in ROW_TAGS:
                self.writer.add_scalar(ROW_TAGS[key], value, step)
            elif key not in NOT_METRICS and isinstance(value, int | float) and math.isfinite(value):
                self.writer.add_scalar(f"Metrics/{key}", value, step)
        if row.get("alarm"):
            self.writer.add_text("Alarm", row["alarm"], step)

    def samples(self, path: Path, step: int) -> None:
        if step == self.image_step or not path.is_file():  # the end redraws the grid of a step that drew one
            return
        self.image_step = step
        with Image.open(path) as img:
            pixels = np.asarray(img.convert("RGB"))
        self.writer.add_image("Samples", pixels, step, dataformats="HWC")

    def close(self) -> None:
        self.writer.close()
