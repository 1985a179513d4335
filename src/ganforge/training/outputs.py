"""What a run shows people besides its checkpoints: hardware.json, report.html and TensorBoard events.

Rank 0 alone writes them. The report is refreshed after each checkpoint and when training ends, but a
refresh is skipped while the time spent refreshing would exceed ``REPORT_SHARE`` of the time since the
last one, so a fast device with frequent checkpoints never pays more than that for it.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from ..config import Config
from ..files import atomic_write
from ..report import write_report
from ..runs import RunDir
from ..version import __version__
from .distributed import World

log = logging.getLogger("ganforge")

REPORT_SHARE = 0.01  # at most this fraction of the training time goes to refreshing report.html


def cpu_model() -> str:
    """The CPU's marketing name where the OS tells it (Linux: /proc/cpuinfo), else the architecture."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware_info(device: torch.device, world_size: int = 1) -> dict[str, Any]:
    """Where the run trains: CPU, cores, memory, accelerator, processes and software versions."""
    info: dict[str, Any] = {
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else
        "Apple GPU (MPS)" if device.type == "mps" else None,
        "processes": world_size,
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        info["memory_gib"] = round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30, 1)
    info.update(platform=platform.platform(), python=platform.python_version(), torch=torch.__version__,
                cuda=torch.version.cuda, ganforge=__version__)
    return info


class RunOutputs:
    """Called by the trainer as it writes rows, samples and checkpoints; does nothing on ranks other than 0."""

    def __init__(self, config: Config, run: RunDir, device: torch.device, world: World, step: int = 0) -> None:
        self.run, self.enabled = run, world.main
        self.tensorboard = None
        self.last_refresh, self.refresh_cost = time.perf_counter(), 0.0
        self.hardware: dict[str, Any] | None = None  # written with the first report
        if not self.enabled:
            return
        if config.tensorboard:
            from .tensorboard import TensorBoardLog

            self.tensorboard = TensorBoardLog(run.tensorboard, step)
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.hardware = {"from_step": step, "started": started, **hardware_info(device, world.world_size)}

    def _record_hardware(self, entry: dict[str, Any]) -> None:
        """Add this machine to hardware.json: one entry per start or resume, from the step it began at."""
        entries = json.loads(self.run.hardware.read_text()) if self.run.hardware.is_file() else []
        # An earlier attempt from this step or later did not reach a checkpoint that this one keeps.
        entries = [e for e in entries if isinstance(e, dict) and e.get("from_step", 0) < entry["from_step"]]
        atomic_write(self.run.hardware, json.dumps([*entries, entry], indent=2) + "\n")

    def row(self, row: dict[str, Any]) -> None:
        """A metrics.jsonl row (training statistics or an evaluation) was written."""
        if self.tensorboard is not None:
            self.tensorboard.row(row)

    def samples(self, path: Path, step: int) -> None:
        """A sample grid was written to ``path``."""
        if self.tensorboard is not None:
            self.tensorboard.samples(path, step)

    def checkpoint(self) -> None:
        """A checkpoint was written: refresh the report, unless that would cost more than ``REPORT_SHARE``."""
        if self.enabled and self.refresh_cost <= REPORT_SHARE * (time.perf_counter() - self.last_refresh):
            self._refresh()

    def close(self) -> None:
        """Training ended: the final report, and the TensorBoard files flushed."""
        if not self.enabled:
            return
        self._refresh()
        if self.tensorboard is not None:
            self.tensorboard.close()

    def _refresh(self) -> None:
        t0 = time.perf_counter()
        try:
            if self.hardware is not None:
                self._record_hardware(self.hardware)
                self.hardware = None
            write_report(self.run.path)
        except Exception as e:  # a report is never worth a training run
            log.warning("could not write %s: %s: %s", self.run.report, type(e).__name__, e)
        self.last_refresh = time.perf_counter()
        self.refresh_cost = self.last_refresh - t0
