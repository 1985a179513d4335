"""Speed settings resolved for one device: mixed precision, memory layout, fused Adam, torch.compile.

Each option has an ``auto`` that is on only where ``python -m benchmarks speed`` measured a gain (see
benchmarks/README.md); the training loop itself stays free of precision and layout logic: it calls the
modules returned by :func:`step_module`, which take and return float32 tensors.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError


def cpu_has_amx() -> bool:
    """True on CPUs with AMX tiles (Sapphire Rapids and later), where oneDNN runs bf16 convolutions ~2x fp32."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(probe and probe())


def resolve_amp(option: str, device: torch.device, model: str = "dcgan") -> torch.dtype | None:
    """The autocast dtype for ``--amp`` on ``device`` when training ``model``; None means float32 throughout."""
    if option == "off":
        return None
    if device.type == "cuda":
        supported = torch.cuda.is_bf16_supported()
    elif device.type == "cpu":
        # bf16 runs on every x86 CPU, but only AMX makes it fast; elsewhere it is an emulation. Even with AMX the
        # ResNet's grouped convolutions train as fast in float32 at 28 px, and 1.3-1.65x faster at 64 px.
        supported = option == "bf16" or (cpu_has_amx() and model != "resnet")
    else:
        supported = False
    if option == "bf16" and not supported:
        raise ConfigError(f"--amp bf16: {device.type} has no bfloat16 support here; use --amp auto or off")
    return torch.bfloat16 if supported else None


def resolve_channels_last(option: str, model: str, device: torch.device) -> bool:
    """NHWC layout for the convolutional families (DCGAN, ResNet) on CPU and CUDA (tensor cores; oneDNN's NHWC
    kernels). Measured: DCGAN +8 % in float32 on an AVX2 CPU, +16 % with bf16 on an AMX CPU (float32 there within
    noise); ResNet about +30 % on the AMX CPU, in float32 and in bf16 (benchmarks/README.md, ``speed``).
    """
    if option == "off" or model == "mlp":
        return False
    return option == "on" or device.type in ("cpu", "cuda")


def make_adam(params: Iterable[nn.Parameter], lr: float, betas: tuple[float, float],
              device: torch.device) -> torch.optim.Adam:
    """Adam with the fused kernel where torch has one (CPU and CUDA): one pass over all tensors."""
    fused = device.type in ("cpu", "cuda")
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=fused or None)


class StepModule(nn.Module):
    """Runs ``module`` under autocast and in channels-last layout; returns float32, so losses stay exact.

    Keeps the wrapped module's state dict keys untouched (it is never saved itself).
    """

    def __init__(self, module: nn.Module, device: torch.device, amp: torch.dtype | None,
                 channels_last: bool) -> None:
        super().__init__()
        self.module, self.device_type, self.amp, self.channels_last = module, device.type, amp, channels_last

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None, **kwargs: Any) -> Any:
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device_type, dtype=self.amp or torch.float32, enabled=self.amp is not None):
            out = self.module(x, y, **kwargs)
        return tuple(o.float() for o in out) if isinstance(out, tuple) else out.float()


def step_module(module: nn.Module, device: torch.device, amp: torch.dtype | None, channels_last: bool,
                compile: bool = False, cuda_graphs: bool = False) -> nn.Module:
    """``module`` (possibly DDP-wrapped) as the training step calls it: autocast, layout, torch.compile.

    ``cuda_graphs`` compiles with mode "reduce-overhead": inductor records CUDA graphs and replays them,
    which removes the kernel-launch cost that dominates small models on a GPU.
    """
    wrapped: nn.Module = StepModule(module, device, amp, channels_last)
    if compile or cuda_graphs:
        wrapped = torch.compile(wrapped, mode="reduce-overhead" if cuda_graphs else None)
    return wrapped


def prepare_layout(module: nn.Module, channels_last: bool) -> nn.Module:
    """Convert parameters (4-D conv weights) to channels-last in place; other tensors are unaffected."""
    return module.to(memory_format=torch.channels_last) if channels_last else module


__all__ = ["StepModule", "cpu_has_amx", "make_adam", "prepare_layout", "resolve_amp",
           "resolve_channels_last", "step_module"]
