"""Quality per wall-clock budget on real MNIST: each candidate recipe trains for the same number of
seconds, then 10,000 samples are scored with ganforge's classifier features (Fréchet distance, recall, class
coverage, and label accuracy for conditional runs), side by side with the `paper` preset.

    python benchmarks/quality.py --data-dir ../shared/data/mnist --budget 300
    python benchmarks/quality.py --data-dir ../shared/data/mnist --budget 300 --candidates canonical,paper,fast
    python benchmarks/quality.py --data-dir ../shared/data/mnist --budget 300 --no-paper \
        --candidates canonical,fast --save-samples samples/     # files for feature_agreement.py

`canonical` is the tutorials' loop (canonical.py: float32, DataLoader, Sigmoid + BCELoss) on the paper's
28×28 DCGAN, sampled in eval mode: the common baseline; `canonical-mlp` is
the same loop on the vanilla MLP GAN. With ``--save-samples DIR`` each candidate's samples are written to
``DIR/<candidate>.npz`` (as ``ganforge sample --out`` writes them) and that file is what gets scored.
Candidates run one after another (never in parallel: they would share the cores and the budget would mean
nothing). The
table ends with each candidate's distance as a ratio of `paper`'s (and of `canonical`'s, when it ran).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from canonical import canonical_loop

import ganforge
from ganforge.data.npz import load_npz
from ganforge.metrics import Evaluator, evaluate_generator, make_extractor, reference_data
from ganforge.models import Generator
from ganforge.sampling import write_samples

# The ablation behind `fast` (docs/presets.md) ran without label assist. Its base: BCE, BatchNorm D, Adam 4e-4
# with beta1 0.5, at quarter width.
NO_ASSIST = dict(label_assist=False)
FAST_BCE = dict(loss="bce", d_norm="batch", lr_g=4e-4, lr_d=4e-4, beta1=0.5, beta2=0.999, mismatch=0.0, ngf=16,
                ndf=16, **NO_ASSIST)
HINGE_SN = dict(loss="hinge", d_norm="spectral")
LR16 = dict(lr_g=1.6e-3, lr_d=1.6e-3, ngf=16, ndf=16, **NO_ASSIST)

# name -> (preset, extra options). Extra options make ablations of a preset easy to add.
CANDIDATES: dict[str, tuple[str, dict]] = {
    "paper": ("paper", {}),
    "fast": ("fast", {}),
    "fast-cond": ("fast", {"conditional": True}),
    "fast-cond-ms0": ("fast", {"conditional": True, "mode_seeking": 0.0, "mismatch": 0.0}),
    "fast-cond-mm0": ("fast", {**LR16, "conditional": True, "mismatch": 0.0}),
    "fast-no-assist": ("fast", NO_ASSIST),  # labels unused
    "paper+ema": ("paper", {"ema_decay": 0.999}),
    "mlp": ("paper", {"model": "mlp"}),
    # The ablation behind `fast` (docs/presets.md): width, then learning rate, loss and D normalisation.
    "w32": ("fast", {**FAST_BCE, "ngf": 32, "ndf": 32, "lr_g": 2e-4, "lr_d": 2e-4}),
    "w16": ("fast", {**FAST_BCE, "lr_g": 2e-4, "lr_d": 2e-4}),
    "g16d32": ("fast", {**FAST_BCE, "ndf": 32, "lr_g": 2e-4, "lr_d": 2e-4}),
    "fast-bce": ("fast", FAST_BCE),
    "fast-bce-cond": ("fast", {**FAST_BCE, "conditional": True}),
    "fast-bce-cond-ms0": ("fast", {**FAST_BCE, "conditional": True, "mode_seeking": 0.0}),
    "mbstd-cond": ("fast", {**FAST_BCE, "conditional": True, "mbstd": 4}),
    "mbstd-cond-ms0": ("fast", {**FAST_BCE, "conditional": True, "mbstd": 4, "mode_seeking": 0.0}),
    "bce-b32": ("fast", {**FAST_BCE, "batch_size": 32}),
    "bce-beta0": ("fast", {**FAST_BCE, "beta1": 0.0, "beta2": 0.99}),
    "lsgan": ("fast", {**FAST_BCE, "loss": "lsgan"}),
    "mbstd": ("fast", {**FAST_BCE, "mbstd": 4}),
    "bce-lr8e-4": ("fast", {**FAST_BCE, "lr_g": 8e-4, "lr_d": 8e-4}),
    "bce-lr8e-4-cond": ("fast", {**FAST_BCE, "lr_g": 8e-4, "lr_d": 8e-4, "conditional": True}),
    "bce-lr8e-4-beta0": ("fast", {**FAST_BCE, "lr_g": 8e-4, "lr_d": 8e-4, "beta1": 0.0, "beta2": 0.99}),
    "bce-lr12e-4": ("fast", {**FAST_BCE, "lr_g": 1.2e-3, "lr_d": 1.2e-3}),
    "hingesn-4e-4": ("fast", {**FAST_BCE, **HINGE_SN}),
    "hingesn-8e-4": ("fast", {**FAST_BCE, **HINGE_SN, "lr_g": 8e-4, "lr_d": 8e-4}),
    "hingesn-8e-4-cond": ("fast", {**FAST_BCE, **HINGE_SN, "lr_g": 8e-4, "lr_d": 8e-4, "conditional": True}),
    "hingesn-12e-4": ("fast", {**FAST_BCE, **HINGE_SN, "lr_g": 1.2e-3, "lr_d": 1.2e-3}),
    # Around `fast` at quarter width: a lower learning rate, a faster D (TTUR), a larger batch.
    "fast-lr16e-4": ("fast", LR16),
    "fast-ttur": ("fast", {**LR16, "lr_d": 3.2e-3}),
    "fast-b128": ("fast", {**LR16, "batch_size": 128}),
    # Width at fast's learning rate: quarter width, then half width (fast is 24 wide).
    "fast-w16": ("fast", {"ngf": 16, "ndf": 16, **NO_ASSIST}),
    "fast-w32": ("fast", {"ngf": 32, "ndf": 32, **NO_ASSIST}),
    # Conditional label accuracy: the mode-seeking weight, then the matching-aware D (--mismatch).
    "ms0.2-cond": ("fast", {**LR16, "conditional": True, "mode_seeking": 0.2, "mismatch": 0.0}),
    "ms0.1-cond": ("fast", {**LR16, "conditional": True, "mode_seeking": 0.1, "mismatch": 0.0}),
    "mm0.25-cond": ("fast", {**LR16, "conditional": True, "mismatch": 0.25}),
    "mm0.5-cond": ("fast", {**LR16, "conditional": True, "mismatch": 0.5}),
    "mm1-cond": ("fast", {**LR16, "conditional": True, "mismatch": 1.0}),
}


# The tutorials' loop (canonical.py) on the paper's DCGAN and on the vanilla MLP GAN: the common baselines.
CANONICAL = {"canonical": "dcgan", "canonical-mlp": "mlp"}


def score(G: Generator, data_dir: str, n: int, save: Path | None) -> dict:
    """Classifier-feature FD, recall and class coverage of n samples of G (EMA weights, eval mode)."""
    if save is None:
        return evaluate_generator(G, dataset="mnist", data_dir=data_dir, n=n, metrics="fid,pr", features="classifier")
    write_samples(G, n, save)  # a file of samples, as a user hands it on, then that very file scored
    extractor = make_extractor("classifier", "mnist", data_dir, G.resolution)
    return Evaluator(reference_data("mnist", data_dir), extractor, "fid,pr").score_images(load_npz(save), str(save))


def run_canonical(name: str, data_dir: str, budget: float, n: int, seed: int, save: Path | None,
                  max_steps: int | None = None) -> dict:
    data = ganforge.load_dataset("mnist", data_dir, "train")
    step, G = canonical_loop(CANONICAL[name], data, 64, torch.device("cpu"), seed)
    steps, t0 = 0, time.perf_counter()
    while (steps < max_steps) if max_steps else (time.perf_counter() - t0 < budget):
        step()
        steps += 1
    G.eval()
    return {"candidate": name, "steps": steps, **score(G, data_dir, n, save)}


def run_candidate(name: str, data_dir: str, budget: float, n: int, workdir: Path, seed: int,
                  save_dir: Path | None = None, max_steps: int | None = None) -> dict:
    save = None if save_dir is None else save_dir / f"{name}.npz"
    if name in CANONICAL:
        return run_canonical(name, data_dir, budget, n, seed, save, max_steps)
    preset, extra = CANDIDATES[name]
    limit = dict(steps=max_steps) if max_steps else dict(time_limit=budget)
    config = ganforge.Config.from_preset(preset, dataset="mnist", data_dir=data_dir, **limit,
                                         out=str(workdir / name), seed=seed, sample_every=10**9,
                                         checkpoint_every=10**9, **extra)
    run = ganforge.train(config, progress=False)
    G = ganforge.load_generator(run.path)
    return {"candidate": name, "steps": run.step, **score(G, data_dir, n, save)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="folder with the MNIST IDX files")
    parser.add_argument("--budget", type=float, default=300.0, help="training seconds per candidate")
    parser.add_argument("--steps", default="", metavar="NAME=N,...",
                        help="train these candidates for N steps instead of --budget seconds (step-matched "
                             "anchors do not depend on the machine's speed)")
    parser.add_argument("--candidates", default="paper,fast,fast-cond",
                        help=f"from {', '.join([*CANONICAL, *CANDIDATES])}")
    parser.add_argument("--n", type=int, default=10_000, help="samples scored per candidate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="also write the rows as JSON lines here")
    parser.add_argument("--save-samples", type=Path, default=None, metavar="DIR",
                        help="write each candidate's samples to DIR/<candidate>.npz and score that file")
    parser.add_argument("--no-paper", action="store_true",
                        help="skip the `paper` run that is otherwise added (and the FD / paper column)")
    args = parser.parse_args()

    names = [c for c in args.candidates.split(",") if c]
    unknown = [c for c in names if c not in CANDIDATES and c not in CANONICAL]
    if unknown:
        parser.error(f"unknown candidate(s) {', '.join(unknown)}; choose from "
                     f"{', '.join([*CANONICAL, *CANDIDATES])}")
    steps = {k: int(v) for k, _, v in (item.partition("=") for item in args.steps.split(",") if item)}
    if "paper" not in names and not args.no_paper:
        names.append("paper")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            row = run_candidate(name, args.data_dir, args.budget, args.n, Path(tmp), args.seed, args.save_samples,
                                steps.get(name))
            rows.append(row)
            print(json.dumps(row), flush=True)
    base = next((r for r in rows if r["candidate"] == "paper"), None)
    canon = next((r for r in rows if r["candidate"] == "canonical"), None)
    print(f"\n{'candidate':<12} {'steps':>7} {'FD':>8} {'recall':>7} {'classes':>8} {'max/min':>8} {'label acc':>9}"
          + (f" {'FD / paper':>10}" if base else "")
          + (f" {'FD / canonical':>14}" if canon else ""))
    for r in rows:
        acc = r.get("label_accuracy")
        print(f"{r['candidate']:<12} {r['steps']:>7} {r['fid']:>8.2f} {r['recall']:>7.3f} {r['classes_present']:>8} "
              f"{r['class_ratio']:>8.2f} {'-' if acc is None else f'{acc:.3f}':>9}"
              + (f" {r['fid'] / base['fid']:>10.3f}" if base else "")
              + (f" {r['fid'] / canon['fid']:>14.3f}" if canon else ""))
    if args.out:
        Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in rows))


if __name__ == "__main__":
    main()
