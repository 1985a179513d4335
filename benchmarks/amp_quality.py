"""Does bf16 autocast change what a run learns? fp32 vs bf16 runs of MNIST DCGAN, several seeds each.

For each (precision, seed) it trains ``--steps`` steps and reports the mean losses and D outputs over the
last half of the run, and a Fréchet distance between 5,000 samples of the EMA generator and 5,000 real
test images in a 64-dimensional PCA space fitted on real images (an FID stand-in that needs no
Inception weights). bf16 is harmless when its numbers fall within the fp32 seed-to-seed spread.

    python benchmarks/amp_quality.py --data-dir ../shared/data/mnist --steps 300 --seeds 0,1
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from scipy import linalg
from sklearn.decomposition import PCA

import ganforge


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/mnist"))
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--amp", default="off,bf16")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    test = ganforge.load_dataset("mnist", args.data_dir, "test")
    real = test.images[:10000].reshape(10000, -1).astype(np.float32) / 127.5 - 1
    pca = PCA(64, random_state=0).fit(real[:5000])
    real_feats = pca.transform(real[5000:])
    rows = []
    for amp in args.amp.split(","):
        for seed in map(int, args.seeds.split(",")):
            with tempfile.TemporaryDirectory() as tmp:
                cfg = ganforge.Config(dataset="mnist", data_dir=args.data_dir, steps=args.steps, seed=seed, amp=amp,
                                      device="cpu", out=f"{tmp}/run", log_every=10, sample_every=10**6,
                                      checkpoint_every=10**6)
                run = ganforge.train(cfg, progress=False)
                log = [json.loads(r) for r in (run.path / "metrics.jsonl").read_text().splitlines()]
                g = run.load_generator("cpu")
                fake = g.sample(5000, seed=123).reshape(5000, -1).numpy()
            late = log[len(log) // 2:]
            row = {"amp": amp, "seed": seed, **{k: float(np.mean([r[k] for r in late]))
                                                for k in ("loss_d", "loss_g", "d_real", "d_fake", "img_per_s")},
                   "pca_fd": frechet(pca.transform(fake), real_feats)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\n{'amp':>5} {'seed':>4} {'loss_d':>7} {'loss_g':>7} {'D(x)':>6} {'D(G(z))':>7} {'PCA-FD':>7}")
    for r in rows:
        print(f"{r['amp']:>5} {r['seed']:>4} {r['loss_d']:7.3f} {r['loss_g']:7.3f} {r['d_real']:6.3f} "
              f"{r['d_fake']:7.3f} {r['pca_fd']:7.2f}")


if __name__ == "__main__":
    sys.exit(main())
