"""Quality per wall-clock budget: each candidate recipe trains for the same number of seconds, then its
samples are scored, side by side with the `paper` preset. On real MNIST (the default): 10,000 samples in
ganforge's classifier features (Fréchet distance, recall, class coverage, and label accuracy for conditional
runs). With ``--dataset stacked-mnist``: the modes metric (modes of 1,000 and KL to uniform, 26,000 samples,
28 or 32 px). With ``--dataset emoji``: the 64×64 colour emoji, 10,000 samples scored in the features of a
classifier of their 10 categories (trained once, cached): Fréchet distance, recall, categories covered.

    python benchmarks/quality.py --data-dir ../shared/data/mnist --budget 300
    python benchmarks/quality.py --data-dir ../shared/data/mnist --budget 300 --candidates canonical,paper,fast
    python benchmarks/quality.py --data-dir ../shared/data/mnist --budget 300 --no-paper \
        --candidates canonical,fast --save-samples samples/     # files for feature_agreement.py
    python benchmarks/quality.py --dataset stacked-mnist --data-dir ../shared/data/mnist --budget 300 \
        --candidates color,fast
    python benchmarks/quality.py --dataset stacked-mnist --data-dir ../shared/data/mnist --no-paper \
        --candidates real
    python benchmarks/quality.py --dataset emoji --data-dir ../shared/data/emoji --budget 300 \
        --candidates color,color-cond

Emoji candidates that use labels (``conditional``, or ``label_assist`` as `fast` does) train on the images
sorted into category folders (``emoji.py``; built under ``$GANFORGE_DATA/emoji-by-category``), the others on
``images/`` unlabelled; all are scored against the same images. `real` scores the held-out test split
(mnist, stacked-mnist) as if it had been generated: the ceiling a candidate can reach at this sample count.

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
from dataclasses import dataclass
from pathlib import Path

import torch
from canonical import canonical_loop
from emoji import category_tree

import ganforge
from ganforge.data.npz import load_npz
from ganforge.download import cache_root
from ganforge.metrics import Evaluator, evaluate_generator, make_extractor, reference_data
from ganforge.metrics.evaluate import default_samples
from ganforge.models import Generator
from ganforge.sampling import write_samples

# The ablation behind `fast` (docs/presets.md) ran without label assist. Its base: BCE, BatchNorm D, Adam 4e-4
# with beta1 0.5, at quarter width. Like every screen before the presets self-conditioned unlabelled runs
# (--clusters 20), it ran with no clusters either: C0 keeps those candidates what they were.
C0 = dict(clusters=0)
NO_ASSIST = dict(label_assist=False, **C0)
FAST_BCE = dict(loss="bce", d_norm="batch", lr_g=4e-4, lr_d=4e-4, beta1=0.5, beta2=0.999, mismatch=0.0, ngf=16,
                ndf=16, **NO_ASSIST)
HINGE_SN = dict(loss="hinge", d_norm="spectral")


def LR(lr: float) -> dict:  # noqa: N802  both nets at ``lr`` with SN-GAN's betas, as `fast`
    return dict(lr_g=lr, lr_d=lr, beta1=0.0, beta2=0.99)


# The color preset's screen started from SN-GAN's recipe (the paper's learning rate and betas) with all three of
# DiffAugment's policies; each candidate below changes that, and `color` is what the screen chose.
ALL_AUG = dict(augment=["translation", "color", "cutout"])
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
    "color": ("color", {}),
    "color-c0": ("color", C0),  # the color preset before it self-conditioned unlabelled runs
    "color-cond": ("color", {"conditional": True}),
    "color-cond-ms0": ("color", {"conditional": True, "mode_seeking": 0.0, "mismatch": 0.0}),
    "color-rpgan": ("color", {**C0, "loss": "rpgan", "r1_gamma": 0.1}),
    # The relativistic pairing loss of R3GAN (--loss rpgan, R1 + R2 at --r1-gamma) in place of fast's hinge.
    "fast-rpgan": ("fast", {"loss": "rpgan", "r1_gamma": 0.1}),
    "fast-rpgan-g1": ("fast", {"loss": "rpgan", "r1_gamma": 1.0}),
    "fast-rpgan-no-assist": ("fast", {"loss": "rpgan", "r1_gamma": 0.1, **NO_ASSIST}),
    "fast-rpgan-nosn": ("fast", {"loss": "rpgan", "r1_gamma": 1.0, "d_norm": "none"}),
    # Minibatch standard deviation at three group sizes, for mode coverage on unlabelled data.
    **{f"fast-mbstd{g}-no-assist": ("fast", {"mbstd": g, **NO_ASSIST}) for g in (2, 4, 8)},
    # PacGAN packing (--pack N): D scores N images at once, for mode coverage on unlabelled data.
    **{f"fast-pack{n}-no-assist": ("fast", {"pack": n, **NO_ASSIST}) for n in (2, 4)},
    **{f"color-pack{n}": ("color", {"pack": n}) for n in (2, 4)},
    # Self-conditioning (--clusters K): k-means clusters of the images as labels, the dataset's own unused.
    **{f"fast-clusters{k}": ("fast", {"clusters": k, "label_assist": False}) for k in (10, 20, 50)},
    **{f"color-clusters{k}": ("color", {"clusters": k}) for k in (10, 20, 100, 300)},
    # Around `color` on Stacked MNIST: width (both nets, or G alone), learning rate, batch size.
    "color-w48": ("color", {**C0, "ngf": 48, "ndf": 48}),
    "color-g48": ("color", {**C0, "ngf": 48}),
    "color-lr1e-3": ("color", {**C0, **LR(1e-3)}),
    "color-b128": ("color", {**C0, "batch_size": 128}),
    # Longer runs on Stacked MNIST: the wider pair at a lower learning rate, and with the preset's clusters.
    "color-w48-lr1e-3-trans": ("color", {**C0, "ngf": 48, "ndf": 48, **LR(1e-3)}),
    "color-w48-clusters20": ("color", {"ngf": 48, "ndf": 48, "clusters": 20}),
    # The color preset's screen on 64×64 emoji (docs/presets.md): width, learning rate, augmentation, loss.
    "color-w32": ("color", {**C0, "ngf": 32, "ndf": 32, **ALL_AUG, "lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.5,
                            "beta2": 0.999}),
    "color-w32-lr1e-3": ("color", {**C0, "ngf": 32, "ndf": 32, **LR(1e-3), **ALL_AUG}),
    "color-w32-lr24e-4": ("color", {**C0, "ngf": 32, "ndf": 32, **LR(2.4e-3), **ALL_AUG}),
    "color-w24-lr24e-4": ("color", {**C0, "ngf": 24, "ndf": 24, **LR(2.4e-3), **ALL_AUG}),
    "color-w48-lr1e-3": ("color", {**C0, "ngf": 48, "ndf": 48, **LR(1e-3), **ALL_AUG}),
    "color-w16-lr24e-4": ("color", {**C0, "ngf": 16, "ndf": 16, **LR(2.4e-3), **ALL_AUG}),
    "color-w24-lr24e-4-b32": ("color", {**C0, "ngf": 24, "ndf": 24, **LR(2.4e-3), **ALL_AUG, "batch_size": 32}),
    "color-w24-lr24e-4-noaug": ("color", {**C0, "ngf": 24, "ndf": 24, **LR(2.4e-3), "augment": []}),
    "color-w32-lr1e-3-noaug": ("color", {**C0, "ngf": 32, "ndf": 32, **LR(1e-3), "augment": []}),
    "color-w32-lr1e-3-trans": ("color", {**C0, "ngf": 32, "ndf": 32, **LR(1e-3), "augment": ["translation"]}),
    "color-w32-lr1e-3-rpgan": ("color", {**C0, "ngf": 32, "ndf": 32, **LR(1e-3), **ALL_AUG, "loss": "rpgan",
                                         "r1_gamma": 0.1}),
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
REAL = "real"  # the held-out test split, scored as if generated


@dataclass(frozen=True)
class Bench:
    """Where candidates train and how they are scored. ``labelled_dir`` is the data with labels, where that
    differs from ``data_dir`` (emoji: category folders); scoring always uses it."""

    dataset: str  # ganforge's --dataset
    data_dir: str
    image_size: int
    metrics: str
    labelled_dir: str | None = None

    @property
    def eval_dir(self) -> str:
        return self.labelled_dir or self.data_dir

    def train_dir(self, uses_labels: bool) -> str:
        return self.labelled_dir if uses_labels and self.labelled_dir else self.data_dir


def make_bench(dataset: str, data_dir: str, image_size: int | None) -> Bench:
    if dataset == "emoji":
        tree = category_tree(Path(data_dir), cache_root() / "emoji-by-category")
        return Bench("folder", str(Path(data_dir) / "images"), image_size or 64, "fid,pr", str(tree))
    if dataset == "stacked-mnist":
        return Bench(dataset, data_dir, image_size or 28, "modes")
    return Bench(dataset, data_dir, image_size or 28, "fid,pr")


def score(G: Generator, bench: Bench, n: int, save: Path | None) -> dict:
    """The bench's metrics on n samples of G (EMA weights, eval mode), in the domain classifier's features."""
    if save is None:
        return evaluate_generator(G, dataset=bench.dataset, data_dir=bench.eval_dir, n=n,
                                  metrics=bench.metrics, features="classifier")
    write_samples(G, n, save)  # a file of samples, as a user hands it on, then that very file scored
    return score_images(bench, load_npz(save), str(save))


def score_images(bench: Bench, images: ganforge.ImageData, source: str) -> dict:
    extractor = make_extractor("classifier", bench.dataset, bench.eval_dir, bench.image_size)
    reference = reference_data(bench.dataset, bench.eval_dir, bench.image_size)
    return Evaluator(reference, extractor, bench.metrics).score_images(images, source)


def run_real(bench: Bench, n: int) -> dict:
    test = reference_data(bench.dataset, bench.data_dir, bench.image_size, split="test")
    if n < len(test):
        test = ganforge.ImageData(test.images[:n], test.labels[:n], test.name, test.class_names)
    return {"candidate": REAL, "steps": 0, **score_images(bench, test, "the real test split")}


def run_canonical(name: str, bench: Bench, budget: float, n: int, seed: int, save: Path | None,
                  max_steps: int | None = None) -> dict:
    data = ganforge.load_dataset(bench.dataset, bench.data_dir, "train", bench.image_size)
    step, G = canonical_loop(CANONICAL[name], data, 64, torch.device("cpu"), seed)
    steps, t0 = 0, time.perf_counter()
    while (steps < max_steps) if max_steps else (time.perf_counter() - t0 < budget):
        step()
        steps += 1
    G.eval()
    return {"candidate": name, "steps": steps, **score(G, bench, n, save)}


def run_candidate(name: str, bench: Bench, budget: float, n: int, workdir: Path, seed: int,
                  save_dir: Path | None = None, max_steps: int | None = None) -> dict:
    save = None if save_dir is None else save_dir / f"{name}.npz"
    if name == REAL:
        return run_real(bench, n)
    if name in CANONICAL:
        return run_canonical(name, bench, budget, n, seed, save, max_steps)
    preset, extra = CANDIDATES[name]
    limit = dict(steps=max_steps) if max_steps else dict(time_limit=budget)
    config = ganforge.Config.from_preset(preset, dataset=bench.dataset, image_size=bench.image_size, **limit,
                                         out=str(workdir / name), seed=seed, sample_every=10**9,
                                         checkpoint_every=10**9, **extra)
    config = config.replace(data_dir=bench.train_dir(config.conditional or config.label_assist))
    run = ganforge.train(config, progress=False)
    G = ganforge.load_generator(run.path)
    return {"candidate": name, "steps": run.step, **score(G, bench, n, save)}


def print_table(rows: list[dict]) -> None:
    """One row per candidate; distances also as a ratio of `paper`'s (and `canonical`'s) when they ran."""
    base = next((r for r in rows if r["candidate"] == "paper"), None)
    canon = next((r for r in rows if r["candidate"] == "canonical"), None)
    columns = [("steps", "steps", 7, "{}"), ("FD", "fid", 8, "{:.2f}"), ("recall", "recall", 7, "{:.3f}"),
               ("modes", "modes", 6, "{}"), ("KL", "modes_kl", 7, "{:.3f}"),
               ("classes", "classes_present", 8, "{}"), ("max/min", "class_ratio", 8, "{:.2f}"),
               ("label acc", "label_accuracy", 9, "{:.3f}")]
    columns = [c for c in columns if any(c[1] in r for r in rows)]
    ratios = [(f"FD / {r['candidate']}", r) for r in (base, canon) if r is not None and "fid" in r]
    print(f"\n{'candidate':<12}" + "".join(f" {h:>{w}}" for h, _, w, _ in columns)
          + "".join(f" {h:>{len(h)}}" for h, _ in ratios))
    for r in rows:
        cells = [("-" if r.get(k) is None else f.format(r[k])) for _, k, _, f in columns]
        widths = [w for _, _, w, _ in columns]
        print(f"{r['candidate']:<12}" + "".join(f" {c:>{w}}" for c, w in zip(cells, widths, strict=True))
              + "".join(f" {r['fid'] / ref['fid']:>{len(h)}.3f}" for h, ref in ratios))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=("mnist", "stacked-mnist", "emoji"), default="mnist")
    parser.add_argument("--data-dir", required=True,
                        help="mnist, stacked-mnist: the MNIST IDX files; emoji: the folder of images/ and "
                             "emoji.json")
    parser.add_argument("--image-size", type=int, default=None,
                        help="mnist, stacked-mnist: 28 (default; stacked-mnist also 32); emoji: 64 (default)")
    parser.add_argument("--budget", type=float, default=300.0, help="training seconds per candidate")
    parser.add_argument("--steps", default="", metavar="NAME=N,...",
                        help="train these candidates for N steps instead of --budget seconds (step-matched "
                             "anchors do not depend on the machine's speed)")
    parser.add_argument("--candidates", default="paper,fast,fast-cond",
                        help=f"from {', '.join([*CANONICAL, *CANDIDATES, REAL])}")
    parser.add_argument("--n", type=int, default=None,
                        help="samples scored per candidate (default 10,000; stacked-mnist: 26,000, the "
                             "protocol's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="also write the rows as JSON lines here")
    parser.add_argument("--save-samples", type=Path, default=None, metavar="DIR",
                        help="write each candidate's samples to DIR/<candidate>.npz and score that file")
    parser.add_argument("--no-paper", action="store_true",
                        help="skip the `paper` run that is otherwise added (and the FD / paper column)")
    args = parser.parse_args()

    names = [c for c in args.candidates.split(",") if c]
    unknown = [c for c in names if c not in CANDIDATES and c not in CANONICAL and c != REAL]
    if unknown:
        parser.error(f"unknown candidate(s) {', '.join(unknown)}; choose from "
                     f"{', '.join([*CANONICAL, *CANDIDATES, REAL])}")
    if REAL in names and args.dataset == "emoji":
        parser.error("the real candidate scores a held-out test split, and emoji has none")
    steps = {k: int(v) for k, _, v in (item.partition("=") for item in args.steps.split(",") if item)}
    if "paper" not in names and not args.no_paper:
        names.append("paper")
    bench = make_bench(args.dataset, args.data_dir, args.image_size)
    n = args.n or default_samples(bench.metrics)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            row = run_candidate(name, bench, args.budget, n, Path(tmp), args.seed, args.save_samples,
                                steps.get(name))
            rows.append(row)
            print(json.dumps(row), flush=True)
    print_table(rows)
    if args.out:
        Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in rows))


if __name__ == "__main__":
    main()
