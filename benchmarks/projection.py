"""How well projection finds real digits: MNIST test digits projected into a trained ``--preset fast`` run, the mean
pixel error of what the generator makes of their latents, and the share of those that ganforge's MNIST classifier
reads as the original's class (target 0.9 or more). Beside it, in the same run, the same classifier on the
originals: the ceiling.

    python -m benchmarks projection --run runs/mnist-fast            # a run you trained
    python -m benchmarks projection --budget 300 --n 500             # trains one for 300 s first
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import ganforge
from ganforge.images import float_to_pixels, pixels_to_float
from ganforge.metrics.features import make_extractor
from ganforge.projection import STEPS, project

from .common import parser, setup

TARGET = 0.9


def main(argv: list[str] | None = None) -> int:
    p = parser("projection", __doc__.split("\n\n")[0], data="mnist")
    p.add_argument("--run", type=Path, default=None, help="a trained MNIST run (default: train --preset fast first)")
    p.add_argument("--budget", type=float, default=300.0, help="seconds of that training")
    p.add_argument("--n", type=int, default=500, help="test digits projected")
    p.add_argument("--steps", type=int, default=STEPS, help="optimisation steps per digit")
    p.add_argument("--batch", type=int, default=100, help="digits projected at once")
    args, device = setup(p, argv)
    with tempfile.TemporaryDirectory() as tmp:
        if args.run is None:
            config = ganforge.Config(preset="fast", dataset="mnist", data_dir=str(args.data_dir),
                                     time_limit=args.budget, out=str(Path(tmp) / "fast"))
            run = ganforge.train(config, progress=False)
        else:
            run = ganforge.Run.open(args.run)
        g = run.load_generator(device=str(device))
        d = run.load_discriminator(device=str(device))
        step = run.load_checkpoint()["step"]
        test = ganforge.load_dataset("mnist", args.data_dir, "test")
        keep = np.linspace(0, len(test) - 1, args.n).round().astype(int)
        images, labels = test.images[keep], test.labels[keep]
        t0 = time.perf_counter()
        made, errors = [], []
        for i in range(0, args.n, args.batch):
            x = pixels_to_float(torch.from_numpy(images[i:i + args.batch].copy()))
            result = project(g, x, d, args.steps)
            made.append(float_to_pixels(result.images).numpy())
            errors.append(result.pixel_error.numpy())
        seconds = time.perf_counter() - t0
    extractor = make_extractor("classifier", "mnist", str(args.data_dir), 28)
    read_made = extractor(np.concatenate(made)).probs.argmax(1)
    read_real = extractor(images).probs.argmax(1)
    same = float((read_made == labels).mean())
    print(f"\n{args.n} MNIST test digits projected into {run.path.name} (step {step}), {args.steps} steps, "
          f"{seconds:.0f} s ({seconds / args.n:.2f} s a digit, {torch.get_num_threads()} threads)")
    print(f"mean pixel error (0..1)                        {np.concatenate(errors).mean():.4f}")
    print(f"classifier reads the projection's class right  {same:.3f}   target {TARGET}: "
          f"{'met' if same >= TARGET else 'MISSED'}")
    print(f"classifier reads the original's class right     {float((read_real == labels).mean()):.3f}   (ceiling)")
    return 0
