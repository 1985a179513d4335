"""Where a Stacked MNIST KL comes from: each channel's digit shares (and their KL to uniform, which add up to
most of the 1,000-mode KL when the channels are drawn independently), and how sure ganforge's MNIST classifier
is of each channel's digit: low confidence means strokes that read as no digit in particular, high confidence
with uneven shares means G prefers some digits.

    python -m benchmarks quality --dataset stacked-mnist --budget 1800 \\
        --no-paper --candidates color --save-samples samples/
    python -m benchmarks modes samples/color.npz real

``real`` scores the held-out test split the same way: the ceiling.
"""

from __future__ import annotations

import numpy as np

from ganforge.data.registry import load_dataset
from ganforge.metrics.features import make_extractor

from .common import parser, setup

N = 26_000  # the protocol's sample count


def kl_to_uniform(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float((p * np.log(len(counts) * p)).sum())


def main(argv: list[str] | None = None) -> int:
    p = parser("modes", __doc__.split("\n\n")[0], data="mnist")
    p.add_argument("samples", nargs="+", help="sample .npz files (as `ganforge sample --out` writes), or real")
    args, _ = setup(p, argv)
    for source in args.samples:
        if source == "real":
            images = np.ascontiguousarray(load_dataset("stacked-mnist", args.data_dir, "test").images[:N])
        else:
            images = np.ascontiguousarray(np.load(source)["images"].transpose(0, 3, 1, 2))  # NHWC -> NCHW
        extractor = make_extractor("classifier", "stacked-mnist", args.data_dir, images.shape[-1])
        probs = extractor(images).probs.reshape(-1, 10, 10, 10)  # mode 100 r + 10 g + b
        modes = probs.reshape(len(probs), -1).argmax(1)
        print(f"{source}: {len(images)} images, {np.count_nonzero(np.bincount(modes, minlength=1000))} modes, "
              f"KL {kl_to_uniform(np.bincount(modes, minlength=1000)):.3f}")
        for name, axes in (("red", (2, 3)), ("green", (1, 3)), ("blue", (1, 2))):
            channel = probs.sum(axes)  # [N, 10]: this channel's digit probabilities
            counts = np.bincount(channel.argmax(1), minlength=10)
            confidence = channel.max(1)
            print(f"  {name:5s} digit shares {' '.join(f'{c / counts.sum():.3f}' for c in counts)}  "
                  f"KL {kl_to_uniform(counts):.3f}  confidence {confidence.mean():.3f} "
                  f"(under 0.9: {(confidence < 0.9).mean():.1%})")

    return 0
