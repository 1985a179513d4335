"""Q, InfoGAN's head on the discriminator, which reads the latent codes (``ganforge.codes``) back from an image."""

from __future__ import annotations

import torch
from torch import nn

from ..codes import Codes

Q_HIDDEN = 128  # Q's hidden layer, as InfoGAN's MNIST network has it


class CodeHead(nn.Module):
    """Q: D's last features -> the codes' logits and means, through one hidden layer of its own."""

    def __init__(self, features: int, codes: Codes) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(features, Q_HIDDEN), nn.LeakyReLU(0.2), nn.Linear(Q_HIDDEN, codes.dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # (B, ...) -> (B, dim)
        return self.net(h.flatten(1))
