"""How labels enter the networks: an embedding joined to z in G; concatenation or projection in D."""

from __future__ import annotations

import torch
from torch import nn


class LabelEmbedding(nn.Module):
    """Maps class ids to learned vectors; ``forward(z, y)`` returns [z, embed(y)]."""

    def __init__(self, num_classes: int, dim: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_classes, dim)
        nn.init.normal_(self.embed.weight, 0.0, 1.0)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.cat([z, self.embed(y)], dim=1)

    def join_vectors(self, z: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """Join z with arbitrary embedding vectors (e.g. an interpolation between two classes)."""
        return torch.cat([z, e], dim=1)


class ProjectionHead(nn.Module):
    """Miyato & Koyama (2018): logit += <embed(y), sum-pooled features>.

    The class enters D as an inner product with its features, instead of as extra input channels: it
    costs one vector per class, works at every resolution, and gives D a class-conditional logit without
    materialising K label maps per image.
    """

    def __init__(self, num_classes: int, features: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_classes, features)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def forward(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        pooled = h.flatten(2).sum(2) if h.ndim == 4 else h  # (B, C)
        return (self.embed(y) * pooled).sum(1)
