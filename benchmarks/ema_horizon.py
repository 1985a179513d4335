"""Does a longer EMA horizon help long runs? One `fast` run on real MNIST; beside the trainer's own EMA
(decay 0.999), other horizons average the same raw weights, so the comparison has no run-to-run noise.
Snapshots at the given seconds are scored after training (classifier FD, recall, class balance).

    python benchmarks/ema_horizon.py --data-dir ../shared/data/mnist --budget 1800 --at 300,900,1800
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time

import torch

import ganforge
from ganforge.metrics import evaluate_generator
from ganforge.models import recalibrated
from ganforge.run import Run
from ganforge.training.trainer import Trainer

# name -> (rampup r, cap): decay min(cap, 1 - 1/(1 + r·t)) as StyleGAN2-ADA's ema_rampup, or ganforge's ramp.
VARIANTS = {"ramp0.1-cap0.9999": (0.1, 0.9999), "ramp0.25-cap0.9999": (0.25, 0.9999), "fixed0.9999": (None, 0.9999)}


def decay(rampup: float | None, cap: float, t: int) -> float:
    return min(cap, 1 - 1 / (rampup * t + 1)) if rampup else min(cap, (1 + t) / (10 + t))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--budget", type=float, default=1800.0)
    parser.add_argument("--at", default="300,900,1800", help="seconds at which to snapshot every EMA")
    parser.add_argument("--n", type=int, default=10_000, help="samples scored per snapshot")
    args = parser.parse_args()
    snap_at = [float(s) for s in args.at.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = ganforge.Config.from_preset("fast", dataset="mnist", data_dir=args.data_dir, out=tmp + "/r",
                                          time_limit=args.budget, sample_every=10**9, checkpoint_every=10**9)
        trainer = Trainer(cfg, Run.create(cfg), progress=False)
        trainer.G.train()
        trainer.D.train()
        extra = {k: copy.deepcopy(trainer.G).eval().requires_grad_(False) for k in VARIANTS}
        snaps: dict[float, tuple[int, dict]] = {}
        t0 = time.perf_counter()
        while True:
            elapsed = time.perf_counter() - t0
            for s in snap_at:
                if elapsed >= s and s not in snaps:
                    gens = {"ema0.999 (fast)": trainer.ema.module, **extra}
                    snaps[s] = (trainer.step, {k: copy.deepcopy(g) for k, g in gens.items()})
            if elapsed >= args.budget:
                break
            trainer.train_step()
            with torch.no_grad():
                for k, (rampup, cap) in VARIANTS.items():
                    params = list(extra[k].parameters())
                    torch._foreach_lerp_(params, [p.detach() for p in trainer.G.parameters()],
                                         1 - decay(rampup, cap, trainer.step))
                    for b_ema, b in zip(extra[k].buffers(), trainer.G.buffers(), strict=True):
                        b_ema.copy_(b)
    for s, (step, gens) in sorted(snaps.items()):
        for name, g in gens.items():
            r = evaluate_generator(recalibrated(g), dataset="mnist", data_dir=args.data_dir, n=args.n,
                                   metrics="fid,pr", features="classifier")
            print(json.dumps({"at_s": s, "step": step, "ema": name, "fid": round(r["fid"], 3),
                              "recall": round(r["recall"], 3), "class_ratio": round(r["class_ratio"], 3)}), flush=True)


if __name__ == "__main__":
    main()
