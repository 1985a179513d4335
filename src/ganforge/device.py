"""Device choice, in one place: ``auto`` picks CUDA, then MPS, then CPU."""

from __future__ import annotations

import torch

from .errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available; use --device cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("--device mps: MPS is not available; use --device cpu or auto")
    if name not in ("cpu", "cuda", "mps") and not name.startswith("cuda:"):
        raise ConfigError(f"--device: unknown device {name!r}; use auto, cpu, cuda or mps")
    return torch.device(name)
