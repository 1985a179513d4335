"""Where a run trains: CPU, cores, memory, accelerator, processes and software versions (hardware.json)."""

from __future__ import annotations

import os
import platform
from typing import Any

import torch

from ..version import __version__


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
    """What one entry of hardware.json holds."""
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
