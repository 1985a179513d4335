"""The checks of a run's options that need more than the options: the metric names, installed extras, the
device and the data. ``Config.validate`` checks each option and their combinations; this is the rest, run by
``train`` before the run directory exists, so a bad option fails in one line and leaves nothing behind."""

from __future__ import annotations

import torch

from ..config import Config
from ..data import ImageData
from ..errors import ConfigError
from ..metrics.registry import parse_metrics
from ..models import build_models
from .performance import resolve_amp
from .tensorboard import summary_writer


def check_options(config: Config, data: ImageData | None = None, device: torch.device | None = None) -> None:
    """Raise a ``ConfigError`` naming the flag where ``config`` cannot train on ``data`` on ``device``."""
    parse_metrics(config.eval_metrics, "--eval-metrics")
    if config.tensorboard:
        summary_writer()  # the extra is installed
    if device is not None:
        if config.cuda_graphs and device.type != "cuda":
            raise ConfigError(f"--cuda-graphs needs a CUDA device, but training runs on {device.type}; drop the flag")
        resolve_amp(config.amp, device)  # --amp bf16 where the device has none
    if data is not None:
        with torch.device("meta"):  # the family takes this data: its labels and shape (layers without memory)
            build_models(config, data.channels, data.resolution, data.num_classes)


__all__ = ["check_options"]
