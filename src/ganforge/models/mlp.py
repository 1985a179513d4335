"""The articles' vanilla GAN: fully connected G (Linear+BatchNorm+ReLU blocks) and D (Linear+LeakyReLU)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..codes import Codes
from .base import Discriminator, Generator, apply_spectral_norm, minibatch_stddev, pack_images
from .codes import CodeHead
from .conditioning import LabelEmbedding


class MLPGenerator(Generator):
    family = "mlp"

    def __init__(self, z_dim: int = 100, channels: int = 1, resolution: int = 28,
                 hidden: Sequence[int] = (128, 256, 512, 1024), num_classes: int = 0, embed_dim: int = 32,
                 codes: Sequence[str] = ()) -> None:
        super().__init__(z_dim=z_dim, channels=channels, resolution=resolution, hidden=list(hidden),
                         num_classes=num_classes, embed_dim=embed_dim, codes=list(codes))
        self.z_dim, self.channels, self.resolution, self.num_classes = z_dim, channels, resolution, num_classes
        self.codes = Codes.parse(codes)
        self.label = LabelEmbedding(num_classes, embed_dim) if num_classes else None
        layers: list[nn.Module] = []
        width = self.latent_dim + (embed_dim if num_classes else 0)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.BatchNorm1d(h), nn.ReLU(inplace=True)]
            width = h
        layers += [nn.Linear(width, channels * resolution * resolution), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.label is not None:
            z = self.label(z, y)
        return self.decode(z)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h).view(-1, self.channels, self.resolution, self.resolution)  # (B, C, H, W)


class MLPDiscriminator(Discriminator):
    family = "mlp"

    def __init__(self, channels: int = 1, resolution: int = 28, hidden: Sequence[int] = (512, 256),
                 num_classes: int = 0, embed_dim: int = 32, dropout: float = 0.0, norm: str = "none",
                 mbstd: int = 0, pack: int = 1, codes: Sequence[str] = ()) -> None:
        super().__init__(channels=channels, resolution=resolution, hidden=list(hidden), num_classes=num_classes,
                         embed_dim=embed_dim, dropout=dropout, norm=norm, mbstd=mbstd, pack=pack, codes=list(codes))
        self.num_classes, self.mbstd, self.pack = num_classes, mbstd, pack
        self.label = nn.Embedding(num_classes, embed_dim) if num_classes else None
        width = pack * channels * resolution * resolution + (embed_dim if num_classes else 0)
        self.blocks = nn.ModuleList()
        for h in hidden:
            block = [nn.Linear(width, h), nn.LeakyReLU(0.2, inplace=True)]
            if dropout > 0:
                block.append(nn.Dropout(dropout))
            self.blocks.append(nn.Sequential(*block))
            width = h
        self.head = nn.Linear(width + (1 if mbstd else 0), 1)
        self.q = CodeHead(width, Codes.parse(codes)) if codes else None
        if norm == "spectral":  # the vanilla D has no BatchNorm: "batch" and "none" are the same here
            apply_spectral_norm(self)

    def features(self, x: torch.Tensor, y: torch.Tensor | None = None) -> list[torch.Tensor]:
        h = pack_images(x, self.pack).flatten(1)
        if self.label is not None:
            h = torch.cat([h, self.label(y)], dim=1)
        feats = []
        for block in self.blocks:
            h = block(h)
            feats.append(h)
        return feats

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None,
                codes: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x, y)[-1]
        logit = self.head(minibatch_stddev(h, self.mbstd)).squeeze(1)  # (B / pack,) logits
        return self.output(logit, h, codes)

