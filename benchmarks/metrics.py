"""Time to evaluate 10,000 MNIST samples with the classifier features (real statistics cached).

Target: under 30 s on 2 CPU cores. The baseline, measured in the same run and interleaved with the
evaluations, is generating the same 10,000 samples alone: the ratio shows what the metrics add on top.

    python -m benchmarks metrics [--run runs/mnist-dcgan] [--repeats 3]
"""

from __future__ import annotations

import statistics
import time

import torch

from ganforge import Config, build_models, load_generator
from ganforge.metrics.evaluate import Evaluator, generated_batches, reference_data
from ganforge.metrics.features import make_extractor

from .common import parser, setup

TARGET_S = 30.0


def main(argv: list[str] | None = None) -> int:
    ap = parser("metrics", __doc__.splitlines()[0], data="mnist")
    ap.add_argument("--run", default=None, help="a trained MNIST run (default: an untrained DCGAN, same cost)")
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--metrics", default="fid,kid,is,pr,dc")
    ap.add_argument("--repeats", type=int, default=3)
    args, _ = setup(ap, argv)

    if args.run:
        g = load_generator(args.run, device="cpu")
    else:
        g = build_models(Config(dataset="mnist"), 1, 28, 10)[0].eval()
    reference = reference_data("mnist", args.data_dir, 28)
    extractor = make_extractor("classifier", "mnist", args.data_dir, 28)
    evaluator = Evaluator(reference, extractor, args.metrics.split(","), args.n)  # caches the real side
    print(f"{args.n} samples, metrics {args.metrics}, {torch.get_num_threads()} threads, {extractor.description}")

    evals, gens = [], []
    for _ in range(args.repeats):  # interleaved, so both see the same machine load
        t = time.perf_counter()
        for _batch in generated_batches(g, args.n, 0, None):
            pass
        gens.append(time.perf_counter() - t)
        t = time.perf_counter()
        result = evaluator(g)
        evals.append(time.perf_counter() - t)
    ev, gen = statistics.median(evals), statistics.median(gens)
    print(f"evaluate: {ev:.2f} s (median of {args.repeats}; {', '.join(f'{x:.2f}' for x in evals)})")
    print(f"generate only (baseline): {gen:.2f} s; evaluate / generate = {ev / gen:.2f}x")
    print(f"target {TARGET_S:.0f} s: {'met' if ev < TARGET_S else 'MISSED'} ({ev / TARGET_S:.2f} of it)")
    print("result: " + ", ".join(f"{k}={v:.4g}" for k, v in result.items() if isinstance(v, float)))

    return 0
