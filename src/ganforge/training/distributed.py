"""torchrun support: the process group from torchrun's environment, DDP, global BatchNorm, rank-0 I/O.

``torchrun --nproc-per-node N -m ganforge train ...`` starts N copies of the same command. Each one:
trains on its strided shard of every global batch (``DeviceBatcher(rank, world_size)``), draws the
global batch's latents and keeps its slice, and averages gradients with DDP; so a run is, up to float
rounding, the single-process run with batch ``batch_size × N`` (exactly so with ``--sync-bn`` or without
BatchNorm). Only rank 0 touches the run directory; it broadcasts the paths and checkpoints to the others.
"""

from __future__ import annotations

import copy
import inspect
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.parallel import DistributedDataParallel

from ..errors import GanforgeError

T = TypeVar("T")

STOP_SYNC_EVERY = 8  # steps between agreements on a time limit or a signal (one tiny collective each)
STOP_REASONS = (None, "callback", "time_limit", "SIGTERM", "SIGINT")  # index = code; the largest wins


@dataclass(frozen=True)
class World:
    """This process's place among the training processes; ``World()`` is a plain single process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    control: Any = field(default=None, compare=False)  # a gloo group for small CPU-side agreements

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def device(self, device: torch.device) -> torch.device:
        """The device of this rank: ``cuda`` becomes ``cuda:LOCAL_RANK``."""
        if device.type == "cuda" and self.enabled and device.index is None:
            device = torch.device("cuda", self.local_rank)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        return device

    def broadcast(self, obj: T) -> T:
        """Rank 0's ``obj`` on every rank (pickled; tensors included)."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0, group=self.control)
        return box[0]

    def on_main(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on rank 0 and give every rank its result, or raise its ganforge error everywhere."""
        if not self.enabled:
            return fn()
        result: tuple[bool, Any] = (True, None)
        if self.main:
            try:
                result = (True, fn())
            except GanforgeError as e:
                result = (False, e)
        ok, value = self.broadcast(result)
        if not ok:
            raise value
        return value

    def mean(self, t: torch.Tensor) -> torch.Tensor:
        """The mean of ``t`` over ranks (in place on a copy)."""
        if not self.enabled:
            return t
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.div_(self.world_size)

    def max(self, value: float) -> float:
        """The largest of every rank's ``value`` (on the CPU-side group): what all ranks then agree on."""
        if not self.enabled:
            return value
        t = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self.control)
        return float(t)

    def agree_stop(self, reason: str | None, step: int) -> str | None:
        """A stop that every rank takes at the same step.

        Step and epoch budgets are the same on every rank; a time limit or a signal is seen by each rank
        at its own moment, so those are pooled every ``STOP_SYNC_EVERY`` steps (on a CPU-side gloo group,
        so a GPU run never waits on the device for it).
        """
        if not self.enabled or reason in ("steps", "epochs"):
            return reason
        if step % STOP_SYNC_EVERY:
            return None
        code = torch.tensor([STOP_REASONS.index(reason)])
        dist.all_reduce(code, op=dist.ReduceOp.MAX, group=self.control)
        return STOP_REASONS[int(code)]

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier(group=self.control)


SINGLE = World()


def current() -> World:
    """The world of an initialised process group (see :func:`process_group`), else a single process."""
    return _current


_current = SINGLE


@contextmanager
def process_group(device: torch.device) -> Iterator[World]:
    """Join the training processes torchrun started (gloo on CPU, NCCL on CUDA); a no-op outside torchrun.

    Reads torchrun's RANK, WORLD_SIZE, LOCAL_RANK and MASTER_ADDR/PORT; a process group that the caller
    already initialised is used as it is and left open.
    """
    global _current
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1 and not dist.is_initialized():
        yield SINGLE
        return
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    created = not dist.is_initialized()
    if created:
        if device.type == "cuda":
            torch.cuda.set_device(local_rank if device.index is None else device.index)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if created and dist.get_rank() != 0:  # a torchrun worker: rank 0 alone reports progress
        logging.getLogger("ganforge").setLevel(logging.WARNING)
    backend = dist.get_backend()
    control = None if backend == "gloo" else dist.new_group(backend="gloo")
    previous = _current
    _current = World(dist.get_rank(), dist.get_world_size(), local_rank, control)
    try:
        yield _current
    finally:
        _current = previous
        if created:
            dist.destroy_process_group()


def wrap_ddp(module: nn.Module, device: torch.device) -> nn.Module:
    """DDP with BatchNorm buffers left per rank.

    ``broadcast_buffers=False``: running statistics are used only in eval mode, and every generator used
    in eval mode (samples, export) has its statistics re-estimated first, so a broadcast before every
    forward (three per step for D) would buy nothing.
    """
    ids = [device.index] if device.type == "cuda" else None
    # torch >= 2.12 renamed the option (and still syncs buffers once at init, which is what we want).
    renamed = "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
    no_sync = {"forward_sync_buffers" if renamed else "broadcast_buffers": False}
    return DistributedDataParallel(module, device_ids=ids, gradient_as_bucket_view=True, **no_sync)


class _AllGather(torch.autograd.Function):
    """all_gather along a new first dim, differentiable on every backend (gloo has no reduce_scatter)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        out = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(out, x.contiguous())
        return torch.stack(out)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        # Every rank's loss depends on every slice: this rank's gradient is the sum over ranks of its slice.
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[dist.get_rank()]


class GlobalBatchNorm(_BatchNorm):
    """BatchNorm whose training statistics are those of the global batch, on any backend (gloo too).

    ``torch.nn.SyncBatchNorm`` runs on GPUs only; this one gathers each rank's (mean, centred sum of
    squares), combines them exactly (Chan et al.'s parallel variance), and differentiates through the
    gather, so the gradients are those of BatchNorm over the whole batch. Statistics in float32.
    """

    plain_class: type[_BatchNorm] = nn.BatchNorm2d

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        dims = [0] + list(range(2, x.dim()))
        shape = [1, -1] + [1] * (x.dim() - 2)
        xf = x.float()
        n = xf.numel() // xf.shape[1]  # the same on every rank: each holds one equal shard
        mean_r = xf.mean(dims)
        m2_r = (xf - mean_r.view(shape)).square().sum(dims)
        gathered = _AllGather.apply(torch.stack([mean_r, m2_r]))  # (W, 2, C)
        world = gathered.shape[0]
        mean = gathered[:, 0].mean(0)
        m2 = gathered[:, 1].sum(0) + n * (gathered[:, 0] - mean).square().sum(0)
        total = n * world
        var = m2 / total
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.lerp_(mean.detach(), factor)
                self.running_var.lerp_(m2.detach() / max(total - 1, 1), factor)
        y = (xf - mean.view(shape)) * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_sync_bn(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm in ``module`` (in place) by a GlobalBatchNorm with the same state."""
    for name, child in module.named_children():
        if isinstance(child, _BatchNorm) and not isinstance(child, GlobalBatchNorm):
            new = GlobalBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                  child.track_running_stats)
            new.plain_class = type(child)
            new.load_state_dict(child.state_dict())
            tensors = [*child.parameters(), *child.buffers()]
            setattr(module, name, new.to(tensors[0].device if tensors else "cpu").train(child.training))
        else:
            convert_sync_bn(child)
    return module


def without_sync_bn(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with plain BatchNorm again: for rank-0-only work such as sampling."""
    module = copy.deepcopy(module)

    def revert(m: nn.Module) -> None:
        for name, child in m.named_children():
            if isinstance(child, GlobalBatchNorm):
                new = child.plain_class(child.num_features, child.eps, child.momentum, child.affine,
                                        child.track_running_stats)
                new.load_state_dict(child.state_dict())
                setattr(m, name, new.to(child.running_mean.device).train(child.training))
            else:
                revert(child)

    revert(module)
    return module


__all__ = ["SINGLE", "STOP_SYNC_EVERY", "GlobalBatchNorm", "World", "convert_sync_bn", "current",
           "process_group", "without_sync_bn", "wrap_ddp"]
