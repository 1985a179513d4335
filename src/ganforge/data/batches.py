"""Batches gathered on the training device: uint8 stays resident, conversion to [-1, 1] happens per batch.

The order is a pure function of (seed, epoch), so a resumed run only needs (epoch, position) to continue
the exact same stream, and sharding by rank is a strided slice of the same permutation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import DataError
from .base import ImageData


@dataclass
class BatcherState:
    epoch: int = 0
    position: int = 0  # batches already served in this epoch


class DeviceBatcher:
    def __init__(self, data: ImageData, batch_size: int, device: torch.device, seed: int = 0,
                 rank: int = 0, world_size: int = 1) -> None:
        self.batches_per_epoch = len(data) // (batch_size * world_size)
        if self.batches_per_epoch < 1:
            raise DataError(
                f"{data.name}: {len(data)} images are fewer than one batch of {batch_size * world_size}; "
                "lower --batch-size"
            )
        self.images = torch.from_numpy(np.ascontiguousarray(data.images)).to(device)  # uint8 [N, C, H, W]
        self.labels = None if data.labels is None else torch.from_numpy(np.asarray(data.labels)).to(device)
        self.batch_size, self.device, self.seed = batch_size, device, seed
        self.rank, self.world_size = rank, world_size
        self.state = BatcherState()
        self._order: torch.Tensor | None = None

    def _epoch_order(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        perm = torch.randperm(len(self.images), generator=g)
        used = self.batches_per_epoch * self.batch_size * self.world_size
        # Each rank takes a strided share of the same permutation; the tail that fits no full batch waits.
        return perm[:used][self.rank::self.world_size].to(self.device)

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Next (images float [-1, 1] [B, C, H, W], labels int64 [B] or None)."""
        if self.state.position >= self.batches_per_epoch:
            self.state = BatcherState(self.state.epoch + 1, 0)
            self._order = None
        if self._order is None:
            self._order = self._epoch_order(self.state.epoch)
        start = self.state.position * self.batch_size
        idx = self._order[start:start + self.batch_size]
        self.state.position += 1
        x = self.images[idx].float().div_(127.5).sub_(1.0)
        y = None if self.labels is None else self.labels[idx]
        return x, y

    @property
    def epoch_float(self) -> float:
        return self.state.epoch + self.state.position / self.batches_per_epoch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.state.epoch, "position": self.state.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.state = BatcherState(int(state["epoch"]), int(state["position"]))
        self._order = None
