"""A conditional D's first layer: the K one-hot label planes joined to the image (the textbook way) against
``FirstConv``, which adds one fixed map per class instead (the same function, by linearity). Times the
whole training step of a labelled run on real-sized data, both variants interleaved in one process, and
prints the ratio.

    python -m benchmarks planes                       # MNIST-like 28×28 gray, 10 classes, --preset fast
    python -m benchmarks planes --channels 3 --size 64 --classes 10 --preset color --conditional
"""

from __future__ import annotations

import statistics
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganforge import Config, ImageData
from ganforge.models.dcgan import FirstConv
from ganforge.run import Run
from ganforge.training.trainer import Trainer

from .common import parser, setup


def planes_forward(self: FirstConv, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """The textbook conditional input: K one-hot planes concatenated to the image, then one convolution."""
    planes = F.one_hot(y, self.num_classes).to(x.dtype)[:, :, None, None].expand(-1, -1, *x.shape[2:])
    return F.conv2d(torch.cat([x, planes], 1), self.weight, None, self.stride, self.padding)


def main(argv: list[str] | None = None) -> int:
    ap = parser("planes", __doc__.split("\n\n")[0])
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--size", type=int, default=28)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--conditional", action="store_true", help="a --conditional run (default: label assist)")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--steps", type=int, default=5, help="steps per round and variant")
    args, _ = setup(ap, argv)
    rng = np.random.default_rng(0)
    data = ImageData(rng.integers(0, 256, (2048, args.channels, args.size, args.size), dtype=np.uint8),
                     np.arange(2048) % args.classes, "synthetic", tuple(map(str, range(args.classes))))
    steps = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("planes", "FirstConv"):
            cfg = Config(preset=args.preset, conditional=args.conditional, label_assist=True, device="cpu",
                         out=str(Path(tmp) / name))
            trainer = Trainer(cfg, Run(Path(tmp) / name), data=data, progress=False)
            if name == "planes":
                conv = trainer.D.blocks[0][0]  # spectral norm makes its class a parametrised subclass: keep it
                conv.forward = types.MethodType(planes_forward, conv)
            trainer.train_step()  # warm-up
            steps[name] = trainer.train_step
        times: dict[str, list[float]] = {k: [] for k in steps}
        for _ in range(args.rounds):
            for name, step in steps.items():
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    step()
                times[name].append((time.perf_counter() - t0) / args.steps)
    base = statistics.median(times["planes"])
    print(f"{args.preset}{' --conditional' if args.conditional else ''}, {args.channels}×{args.size}×{args.size}, "
          f"{args.classes} classes, {torch.get_num_threads()} threads; median ms per training step:")
    for name, t in times.items():
        med = statistics.median(t)
        print(f"  {name:<10} {1000 * med:8.1f} ms   {base / med:5.2f}x")

    return 0
