"""Batches for the training loop: uint8 images in, float [-1, 1] on the training device out.

``DeviceBatcher`` keeps a set that fits whole on the device and gathers batches there;
``StreamingBatcher`` reads batches of a larger prepared set from its memory map in a background thread,
into pinned buffers, and copies them to the device asynchronously. Both serve the same stream: the order
is a pure function of (seed, epoch), so a resumed run only needs (epoch, position) to continue it, and
sharding by rank is a strided slice of the same permutation. ``make_batcher`` picks one.
"""

from __future__ import annotations

import os
import queue
import threading
import weakref
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError, DataError
from ..images import pixels_to_float
from .base import ImageData

BATCHERS = ("auto", "device", "stream")
DEVICE_SHARE = 0.25  # auto: a set is kept whole on the device up to this share of its memory


@dataclass
class BatcherState:
    epoch: int = 0
    position: int = 0  # batches already served in this epoch


def batches_per_epoch(data: ImageData, batch_size: int, world_size: int) -> int:
    n = len(data) // (batch_size * world_size)
    if n < 1:
        raise DataError(
            f"{data.name}: {len(data)} images are fewer than one batch of {batch_size * world_size}; "
            "lower --batch-size"
        )
    return n


def epoch_order(n: int, batches: int, batch_size: int, seed: int, epoch: int, rank: int = 0,
                world_size: int = 1) -> torch.Tensor:
    """This rank's image indices for ``epoch`` (CPU int64, ``batches * batch_size`` of them)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=g)
    used = batches * batch_size * world_size
    # Each rank takes a strided share of the same permutation; the tail that fits no full batch waits.
    return perm[:used][rank::world_size]


class _Batcher:
    """What both batchers share: the (seed, epoch) order, the position in it, and its checkpoint state."""

    def __init__(self, data: ImageData, batch_size: int, device: torch.device, seed: int, rank: int,
                 world_size: int) -> None:
        if not 0 <= rank < world_size:
            raise ConfigError(f"rank {rank} is outside world size {world_size}")
        self.batches_per_epoch = batches_per_epoch(data, batch_size, world_size)
        self.n, self.batch_size, self.device, self.seed = len(data), batch_size, torch.device(device), seed
        self.rank, self.world_size = rank, world_size
        self.state = BatcherState()

    def _epoch_order(self, epoch: int) -> torch.Tensor:
        return epoch_order(self.n, self.batches_per_epoch, self.batch_size, self.seed, epoch, self.rank,
                           self.world_size)

    @property
    def epoch_float(self) -> float:
        return self.state.epoch + self.state.position / self.batches_per_epoch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.state.epoch, "position": self.state.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.state = BatcherState(int(state["epoch"]), int(state["position"]))
        self._restart()

    def _advance(self) -> BatcherState:
        """The (epoch, position) of the batch to serve now; moves the state past it."""
        if self.state.position >= self.batches_per_epoch:
            self.state = BatcherState(self.state.epoch + 1, 0)
        served = BatcherState(self.state.epoch, self.state.position)
        self.state.position += 1
        return served

    def _restart(self) -> None:
        raise NotImplementedError


class DeviceBatcher(_Batcher):
    """The whole set resident on ``device`` as uint8; each batch is one gather there."""

    def __init__(self, data: ImageData, batch_size: int, device: torch.device, seed: int = 0,
                 rank: int = 0, world_size: int = 1) -> None:
        super().__init__(data, batch_size, device, seed, rank, world_size)
        # A read-only memmap is copied in: torch needs writable memory, and the set must live on the device.
        images = np.require(data.images, np.uint8, ["C_CONTIGUOUS", "WRITEABLE"])
        self.images = torch.from_numpy(images).to(self.device)  # uint8 [N, C, H, W]
        self.labels = None if data.labels is None else torch.from_numpy(np.array(data.labels)).to(self.device)
        self._order: tuple[int, torch.Tensor] | None = None

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Next (images float [-1, 1] [B, C, H, W], labels int64 [B] or None)."""
        at = self._advance()
        if self._order is None or self._order[0] != at.epoch:
            self._order = (at.epoch, self._epoch_order(at.epoch).to(self.device))
        start = at.position * self.batch_size
        idx = self._order[1][start:start + self.batch_size]
        x = pixels_to_float(self.images.index_select(0, idx))  # index_select: a plain gather, faster than [idx]
        y = None if self.labels is None else self.labels.index_select(0, idx)
        return x, y

    def _restart(self) -> None:
        self._order = None


class StreamingBatcher(_Batcher):
    """Batches gathered from a (memory-mapped) array by a background thread, ``prefetch`` batches ahead.

    The thread fills a ring of buffers (pinned when the device is CUDA, so the copy is asynchronous); a
    buffer is refilled only after the copy out of it has finished.
    """

    def __init__(self, data: ImageData, batch_size: int, device: torch.device, seed: int = 0,
                 rank: int = 0, world_size: int = 1, prefetch: int = 4) -> None:
        super().__init__(data, batch_size, device, seed, rank, world_size)
        self.images = data.images  # uint8 [N, C, H, W], usually a read-only memmap
        self.labels = None if data.labels is None else np.asarray(data.labels, dtype=np.int64)
        self.prefetch = max(1, prefetch)
        self.pinned = self.device.type == "cuda"
        self._worker: _Prefetcher | None = None

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Next (images float [-1, 1] [B, C, H, W], labels int64 [B] or None)."""
        if self._worker is None:
            self._worker = _Prefetcher(self, self.state.epoch, self.state.position)
        self._advance()
        s, slot, y = self._worker.get()
        x = pixels_to_float(slot.to(self.device, non_blocking=self.pinned))
        self._worker.release(s)
        return x, None if y is None else y.to(self.device, non_blocking=self.pinned)

    def _restart(self) -> None:
        if self._worker is not None:
            self._worker.close()
        self._worker = None

    def close(self) -> None:
        """Stop the prefetch thread (also done when the batcher is garbage-collected)."""
        self._restart()


class _Prefetcher:
    """The background thread of a ``StreamingBatcher``, serving batches from (epoch, position) on."""

    def __init__(self, b: StreamingBatcher, epoch: int, position: int) -> None:
        shape = (b.batch_size, *b.images.shape[1:])
        self.slots = [torch.empty(shape, dtype=torch.uint8, pin_memory=b.pinned) for _ in range(b.prefetch + 1)]
        self.free: queue.Queue = queue.Queue()
        for s in range(len(self.slots)):
            self.free.put((s, None))
        self.ready: queue.Queue = queue.Queue()
        self.stop = threading.Event()
        self.pinned = b.pinned
        # The thread holds no reference to the batcher, so dropping the batcher stops the thread.
        order = (b.n, b.batches_per_epoch, b.batch_size, b.seed, b.rank, b.world_size)
        self.thread = threading.Thread(target=_produce, daemon=True, name="ganforge-prefetch",
                                       args=(b.images, b.labels, order, epoch, position, self.slots, self.free,
                                             self.ready, self.stop))
        self.thread.start()
        weakref.finalize(b, self.stop.set)

    def get(self) -> tuple[int, torch.Tensor, torch.Tensor | None]:
        """(buffer index, uint8 batch in that buffer, labels or None) of the next batch."""
        while True:
            try:
                item = self.ready.get(timeout=1.0)
                break
            except queue.Empty:
                if not self.thread.is_alive():
                    raise DataError("the batch prefetch thread stopped unexpectedly") from None
        if isinstance(item, BaseException):
            raise item
        s, y = item
        return s, self.slots[s], y

    def release(self, s: int) -> None:
        event = None
        if self.pinned:  # the copy out of this buffer is in flight: refill it only after it finishes
            event = torch.cuda.Event()
            event.record()
        self.free.put((s, event))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


def _produce(images: np.ndarray, labels: np.ndarray | None, order: tuple[int, ...], epoch: int, position: int,
             slots: list[torch.Tensor], free: queue.Queue, ready: queue.Queue, stop: threading.Event) -> None:
    n, batches, batch_size, seed, rank, world_size = order
    perm = None
    try:
        while not stop.is_set():
            if position >= batches:
                epoch, position, perm = epoch + 1, 0, None
            if perm is None:
                perm = epoch_order(n, batches, batch_size, seed, epoch, rank, world_size).numpy()
            idx = perm[position * batch_size:(position + 1) * batch_size]
            while True:
                try:
                    s, event = free.get(timeout=0.1)
                    break
                except queue.Empty:
                    if stop.is_set():
                        return
            if event is not None:
                event.synchronize()
            # One gather straight into the (pinned) buffer; numpy releases the GIL for the copy.
            np.take(images, idx, axis=0, out=slots[s].numpy())
            ready.put((s, None if labels is None else torch.from_numpy(labels[idx])))
            position += 1
    except BaseException as e:  # surfaced in the training thread by the next get()
        ready.put(e)


def device_budget(device: torch.device) -> int:
    """Bytes a dataset may take to live whole on ``device`` (``auto`` streams anything larger)."""
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory * DEVICE_SHARE)
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        ram = 8 << 30
    return int(ram * DEVICE_SHARE)


def make_batcher(data: ImageData, batch_size: int, device: torch.device, seed: int = 0, rank: int = 0,
                 world_size: int = 1, mode: str = "auto") -> DeviceBatcher | StreamingBatcher:
    """``device``: the whole set on the device; ``stream``: from its memory map; ``auto``: device if it fits."""
    device = torch.device(device)
    if mode not in BATCHERS:
        raise ConfigError(f"--batches: {mode!r} is not one of {', '.join(BATCHERS)}")
    if mode == "auto":
        in_memory = not isinstance(data.images, np.memmap) and device.type == "cpu"
        mode = "device" if in_memory or data.images.nbytes <= device_budget(device) else "stream"
    cls = DeviceBatcher if mode == "device" else StreamingBatcher
    return cls(data, batch_size, device, seed, rank, world_size)
