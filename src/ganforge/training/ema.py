"""The exponential moving average of G used for sampling (``models.recalibrated`` fits its BatchNorm statistics)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..models import Generator


class EMA:
    """Averages G's parameters; copies its buffers (BatchNorm statistics are not averaged).

    The decay ramps up as min(decay, (1 + t) / (10 + t)) so early samples are not dominated by the
    random initialisation.
    """

    def __init__(self, model: Generator, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        ema_params = list(self.module.parameters())
        torch._foreach_lerp_(ema_params, [p.detach() for p in model.parameters()], 1.0 - d)
        for b_ema, b in zip(self.module.buffers(), model.buffers(), strict=True):
            b_ema.copy_(b)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)


__all__ = ["EMA"]
