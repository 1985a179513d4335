"""Data pipeline benchmark, each number next to a plain torch.utils.data.DataLoader in the same run.

1. Preparing MNIST from the gz files into the memory-mapped cache (target: under 3 s on 2 cores), and
   reopening it, next to one epoch of a plain DataLoader over the same arrays (the work it repeats
   every epoch).
2. The batch pipeline's share of one DCGAN training step on MNIST (target: under 5 %): the time spent
   in ``batcher.next()`` (synchronised) over the whole step, for the device-resident batcher, the
   streaming batcher, and a plain DataLoader (shuffle, batch 64, num_workers=0, uint8 -> [-1, 1] per
   batch). Measurements are interleaved round by round, so load on a shared machine hits all alike.

    python -m benchmarks data --data-dir ../shared/data/mnist
    python -m benchmarks data --data-dir ../shared/data/mnist --threads 1     # a busy, shared CPU
    python -m benchmarks data --data-dir ../shared/data/mnist --device cuda --steps 200
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from ganforge.config import Config
from ganforge.data import ImageData, load_dataset, make_batcher
from ganforge.run import Run
from ganforge.training.trainer import Trainer

from .common import parser, setup


class LoaderBatches:
    """A plain DataLoader behind the batcher interface the trainer uses."""

    def __init__(self, data: ImageData, batch_size: int, device: torch.device, seed: int) -> None:
        dataset = TensorDataset(torch.from_numpy(np.array(data.images)), torch.from_numpy(np.array(data.labels)))
        self.loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True,
                                 generator=torch.Generator().manual_seed(seed), pin_memory=device.type == "cuda")
        self.device, self.it, self.epoch_float = device, iter(self.loader), 0.0

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            x, y = next(self.it)
        except StopIteration:
            self.it = iter(self.loader)
            x, y = next(self.it)
        x = x.to(self.device, non_blocking=True).float().div_(127.5).sub_(1.0)
        return x, y.to(self.device, non_blocking=True)


class Timed:
    """Wraps a batcher and adds up the (synchronised) seconds spent in ``next()``."""

    def __init__(self, inner, sync) -> None:
        self.inner, self.sync, self.seconds = inner, sync, 0.0

    def next(self):
        self.sync()
        t = time.perf_counter()
        out = self.inner.next()
        self.sync()
        self.seconds += time.perf_counter() - t
        return out

    def __getattr__(self, name):
        return getattr(self.inner, name)


def bench_prepare(data_dir: Path, repeats: int) -> None:
    cold, warm, loader = [], [], []
    for _ in range(repeats):
        shutil.rmtree(Path(os.environ["GANFORGE_DATA"]) / "prepared", ignore_errors=True)
        t = time.perf_counter()
        data = load_dataset("mnist", data_dir)
        cold.append(time.perf_counter() - t)
        t = time.perf_counter()
        data = load_dataset("mnist", data_dir)
        warm.append(time.perf_counter() - t)
        lb = LoaderBatches(data, 64, torch.device("cpu"), 0)
        t = time.perf_counter()
        for _ in range(len(lb.loader)):
            lb.next()
        loader.append(time.perf_counter() - t)
    c, w, epoch = statistics.median(cold), statistics.median(warm), statistics.median(loader)
    print(f"prepare MNIST from gz (60000 images), median of {repeats}:")
    print(f"  ganforge prepare, cold (gz -> memmap cache)   {c:7.3f} s   target < 3 s: {'PASS' if c < 3 else 'FAIL'}")
    print(f"  ganforge prepare, warm (reopen the cache)     {w:7.3f} s")
    print(f"  plain DataLoader, one epoch over the arrays   {epoch:7.3f} s   (paid again every epoch)")
    print(f"  ratio cold prepare / DataLoader epoch         {c / epoch:7.2f}")


def bench_step(data_dir: Path, device: torch.device, steps: int, rounds: int, tmp: Path) -> None:
    data = load_dataset("mnist", data_dir)
    config = Config(dataset="mnist", data_dir=str(data_dir), model="dcgan", batch_size=64, device=device.type,
                    out=str(tmp / "run"))
    trainer = Trainer(config, Run.create(config), data=data, progress=False)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    pipelines = {
        "ganforge device batcher": lambda: make_batcher(data, 64, device, 0, mode="device"),
        "ganforge streaming batcher": lambda: make_batcher(data, 64, device, 0, mode="stream"),
        "plain DataLoader": lambda: LoaderBatches(data, 64, device, 0),
    }
    shares: dict[str, list[float]] = {k: [] for k in pipelines}
    step_ms: dict[str, list[float]] = {k: [] for k in pipelines}
    batch_ms: dict[str, list[float]] = {k: [] for k in pipelines}
    for _ in range(rounds):
        for name, make in pipelines.items():
            trainer.batcher = Timed(make(), sync)
            for _ in range(3):  # warm-up: allocator, prefetch thread, cuDNN choices
                trainer.train_step()
            trainer.batcher.seconds = 0.0
            sync()
            t = time.perf_counter()
            for _ in range(steps):
                trainer.train_step()
            sync()
            total = time.perf_counter() - t
            shares[name].append(trainer.batcher.seconds / total)
            step_ms[name].append(1000 * total / steps)
            batch_ms[name].append(1000 * trainer.batcher.seconds / steps)
            if hasattr(trainer.batcher.inner, "close"):
                trainer.batcher.inner.close()
    print(f"\nbatch pipeline share of one DCGAN step (MNIST 28×28, batch 64, {device}), "
          f"median of {rounds} interleaved rounds of {steps} steps:")
    base = statistics.median(shares["plain DataLoader"])
    for name in pipelines:
        s, ms, bms = (statistics.median(v[name]) for v in (shares, step_ms, batch_ms))
        verdict = f"target < 5 %: {'PASS' if s < 0.05 else 'FAIL'}" if name != "plain DataLoader" else ""
        ratio = f"{s / base:5.2f}× the DataLoader's share" if name != "plain DataLoader" else ""
        print(f"  {name:<28} {bms:7.3f} ms/batch = {100 * s:6.2f} % of {ms:8.2f} ms/step   {ratio}  {verdict}")


def main(argv: list[str] | None = None) -> int:
    p = parser("data", __doc__, data="mnist")
    p.add_argument("--steps", type=int, default=20, help="timed DCGAN steps per pipeline per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3, help="prepare measurements")
    args, device = setup(p, argv)
    data_dir = args.data_dir
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["GANFORGE_DATA"] = tmp  # a private cache: cold means cold
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")
        bench_prepare(data_dir, args.repeats)
        bench_step(data_dir, device, args.steps, args.rounds, Path(tmp))
    return 0
