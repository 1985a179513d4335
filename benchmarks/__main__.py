"""python -m benchmarks NAME [options]: run one benchmark; with no NAME, list them."""

from __future__ import annotations

import importlib
import sys

# name -> (module, what it measures); each prints its figures beside a baseline measured in the same run.
BENCHMARKS = {
    "speed": ("speed", "training-step img/s and GFLOP/s against the canonical tutorial loop"),
    "quality": ("quality", "sample quality per wall-clock budget, recipes side by side"),
    "data": ("data", "dataset preparation and the batch pipeline against a plain DataLoader"),
    "soak": ("soak", "kill -9 a training again and again; resumed == never killed"),
    "export": ("export", "exported ONNX / TorchScript generators against PyTorch"),
    "report": ("report", "what refreshing report.html costs a training run"),
    "metrics": ("metrics", "time to evaluate 10,000 samples against generating them"),
    "features": ("features", "do other feature networks rank runs as ganforge's classifier does?"),
    "planes": ("planes", "a conditional D's label planes against FirstConv's per-class maps"),
    "modes": ("modes", "where a Stacked MNIST KL comes from, channel by channel"),
    "explore": ("explore", "the explorer's grid, slider and projection over HTTP, against the model alone"),
    "projection": ("projection", "projected MNIST digits: pixel error and the class read back, against originals"),
    "emoji": ("emoji", "the emoji images by category, with a held-out split (used by quality)"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in BENCHMARKS:
        width = max(map(len, BENCHMARKS))
        print("usage: python -m benchmarks NAME [options]   (python -m benchmarks NAME --help for its options)\n")
        print("\n".join(f"  {name:<{width}}  {what}" for name, (_, what) in BENCHMARKS.items()))
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(f"benchmarks.{BENCHMARKS[argv[0]][0]}")
    return module.main(argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())
