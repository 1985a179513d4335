"""The exponential moving average of G used for sampling, and BatchNorm statistics that fit it."""

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


@torch.no_grad()
def recalibrated(generator: Generator, batches: int = 4, batch_size: int = 256, seed: int = 0) -> Generator:
    """A copy of ``generator`` whose BatchNorm statistics are exact averages over fresh latents.

    Averaged weights do not match the running statistics collected with the raw weights, so before an
    EMA generator is used in eval mode its statistics are re-estimated (cumulative average, not momentum).
    The copy leaves the training state untouched, so sampling never perturbs a run.
    """
    g = copy.deepcopy(generator)
    norms = [m for m in g.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return g.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    g.train()
    rng = torch.Generator().manual_seed(seed)
    device = g.device
    pool = torch.tensor(g.classes or [0])  # the trained classes: statistics of the images G will be asked for
    for _ in range(batches):
        z = torch.randn(batch_size, g.z_dim, generator=rng).to(device)
        y = pool[torch.randint(len(pool), (batch_size,), generator=rng)].to(device) if g.takes_labels else None
        g(z, y)
    for m in norms:
        m.momentum = 0.1
    return g.eval()


__all__ = ["EMA", "recalibrated"]
