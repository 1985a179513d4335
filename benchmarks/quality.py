"""Quality per wall-clock budget: each candidate recipe trains for the same number of seconds, then its
samples are scored, side by side with the `paper` preset. On real MNIST (the default) and Fashion-MNIST: 10,000
samples in ganforge's classifier features (Fréchet distance, recall, class coverage, and label accuracy for
conditional runs). With ``--dataset stacked-mnist``: the modes metric (modes of 1,000 and KL to uniform, 26,000
samples, 28 or 32 px). With ``--dataset emoji``: the 64×64 colour emoji, 10,000 samples scored in the features
of a classifier of their categories (trained once on the training split, cached): Fréchet distance, recall,
categories covered.

    python -m benchmarks quality --budget 300
    python -m benchmarks quality --budget 300 --candidates canonical,paper,fast
    python -m benchmarks quality --budget 300 --no-paper --candidates canonical,fast --save-samples samples/
    python -m benchmarks quality --dataset stacked-mnist --budget 300 --candidates color,fast
    python -m benchmarks quality --dataset emoji --budget 300 --candidates real,color,color-cond
    python -m benchmarks quality --dataset fashion-mnist --budget 300 --candidates fast

Emoji candidates train on the images of the training split (``emoji.py``; built under
``$GANFORGE_DATA/emoji-split``): by category when they use labels (``conditional``, or ``label_assist`` as `fast`
does), unlabelled otherwise; all are scored against the training split. `real` scores the held-out test split
as if it had been generated: the floor a candidate is measured against at this sample count.

`canonical` is the tutorials' loop (canonical.py: float32, DataLoader, Sigmoid + BCELoss) on the paper's
28×28 DCGAN, sampled in eval mode: the common baseline; `canonical-mlp` is the same loop on the vanilla MLP GAN.
With ``--save-samples DIR`` each candidate's samples are written to ``DIR/<candidate>.npz`` (as ``ganforge sample
--out`` writes them) and that file is what gets scored. Candidates run one after another (never in parallel:
they would share the cores and the budget would mean nothing). The table ends with each candidate's distance
as a ratio of `paper`'s (and of `canonical`'s, when it ran).
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

import ganforge
from ganforge.data import load_config_dataset
from ganforge.data.npz import load_npz
from ganforge.download import cache_root
from ganforge.metrics import evaluate_generator
from ganforge.metrics.registry import default_samples
from ganforge.models import Generator
from ganforge.sampling import write_samples

from . import harness
from .canonical import canonical_loop
from .common import SHARED_DATA, parser, setup
from .emoji import category_tree

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


def R3(lr: float, **extra) -> dict:  # noqa: N802  the r3gan screen: lr (ending at a quarter), widths of the time
    return {"lr_g": lr, "lr_d": lr, "lr_end": lr / 4, "widths": [128, 64, 32], **extra}


W64 = dict(widths=[64, 32, 16])
ASSIST = dict(mode_seeking=0.5)  # with self-conditioning or label assist, as fast has it
# The r3gan preset's screen (at the paper's learning rate, and its widths of the time): width, blocks, learning
# rate, the penalties' weight and laziness, self-conditioning.
CANDIDATES.update({
    # The ResNet family against the DCGAN presets: r3gan with fast's assists (self-conditioning or label assist,
    # with mode seeking), and with color's (z 128, DiffAugment translation; --conditional: a matching-aware D).
    "r3gan-fast": ("r3gan", dict(clusters=20, **ASSIST)),
    "r3gan-fast-assist": ("r3gan", dict(label_assist=True, **ASSIST)),
    "r3gan-color": ("r3gan", dict(clusters=20, z_dim=128, augment=["translation"], **ASSIST)),
    "r3gan-color-cond": ("r3gan", dict(conditional=True, z_dim=128, augment=["translation"], mismatch=0.5,
                                       **ASSIST)),
    # InfoGAN codes in place of fast's clusters, on data used without labels.
    "fast-codes": ("fast", dict(label_assist=False, codes=["cat:10", "cont:2"])),
    "fast-codes-cat": ("fast", dict(label_assist=False, codes=["cat:10"])),
    "fast-codes-l2": ("fast", dict(label_assist=False, codes=["cat:10", "cont:2"], info_cat=2.0)),
    "fast-codes-ms0": ("fast", dict(label_assist=False, codes=["cat:10", "cont:2"], mode_seeking=0.0)),
    "fast-codes-ms0-l2": ("fast", dict(label_assist=False, codes=["cat:10", "cont:2"], mode_seeking=0.0,
                                       info_cat=2.0)),
    "color-codes": ("color", dict(codes=["cat:10", "cont:2"])),  # in place of color's clusters
    # InfoGAN's own MNIST recipe (openai/InfoGAN, run_mnist_exp.py): 62 noise dimensions, batch 128, Adam with
    # beta1 0.5 at 2e-4 for D and 1e-3 for G, on the articles' BatchNorm DCGAN and BCE.
    "infogan": ("paper", dict(codes=["cat:10", "cont:2"], z_dim=62, batch_size=128, lr_g=1e-3, lr_d=2e-4)),
    "r3gan-codes": ("r3gan", dict(codes=["cat:10", "cont:2"], **ASSIST)),
    "r3gan": ("r3gan", {}),
    "r3gan-paper": ("r3gan", R3(2e-4)),  # R3GAN's own learning rate
    "r3gan-w64": ("r3gan", R3(2e-4, **W64)),
    "r3gan-w64-lr1e-3": ("r3gan", R3(1e-3, **W64)),
    "r3gan-w64-b1-lr1e-3": ("r3gan", R3(1e-3, blocks=1, **W64)),
    "r3gan-lr1e-3": ("r3gan", R3(1e-3)),
    "r3gan-w64-lr1e-3-c20": ("r3gan", R3(1e-3, clusters=20, **W64)),
    "r3gan-w64-lr1e-3-g05": ("r3gan", R3(1e-3, r1_gamma=0.5, r1_gamma_end=0.05, **W64)),
    "r3gan-w64-lr1e-3-e4": ("r3gan", R3(1e-3, r1_every=4, **W64)),
    "r3gan-w64-lr2e-3": ("r3gan", R3(2e-3, **W64)),
    "r3gan-w32-lr2e-3": ("r3gan", R3(2e-3, widths=[32, 32, 16])),
    "r3gan-w64-lr1e-3-b32": ("r3gan", R3(1e-3, batch_size=32, **W64)),
    "r3gan-w64-lr4e-3": ("r3gan", R3(4e-3, **W64)),
    "r3gan-w64-lr2e-3-c20": ("r3gan", R3(2e-3, clusters=20, **W64)),
    "r3gan-w64-lr2e-3-g05": ("r3gan", R3(2e-3, r1_gamma=0.5, r1_gamma_end=0.05, **W64)),
    "r3gan-w64-lr2e-3-ms": ("r3gan", R3(2e-3, clusters=20, mode_seeking=0.5, **W64)),
})

# The tutorials' loop (canonical.py) on the paper's DCGAN and on the vanilla MLP GAN: the common baselines.
CANONICAL = {"canonical": "dcgan", "canonical-mlp": "mlp"}
REAL = "real"  # the held-out test split, scored as if generated


DATASETS = ("mnist", "fashion-mnist", "stacked-mnist", "emoji")


@dataclass(frozen=True)
class Bench:
    """Where candidates train and how they are scored: ``labelled`` holds the images with their labels; a
    candidate that uses none trains on them with ``--unlabeled``. ``held_out`` is the real split `real` scores."""

    dataset: str  # ganforge's --dataset
    labelled: str
    image_size: int
    metrics: str
    held_out: str | None = None  # a data dir for the test split of folder sets; None: the dataset's "test"

    def config(self, config: ganforge.Config) -> ganforge.Config:
        """``config`` on this bench's data; a folder candidate that uses no labels reads them as unlabelled."""
        unlabeled = self.dataset == "folder" and not (config.conditional or config.label_assist)
        return config.replace(dataset=self.dataset, data_dir=self.labelled, image_size=self.image_size,
                              unlabeled=unlabeled)


def make_bench(dataset: str, data_dir: Path | None, image_size: int | None) -> Bench:
    data_dir = data_dir or SHARED_DATA / {"stacked-mnist": "mnist"}.get(dataset, dataset)
    if dataset == "emoji":
        tree = category_tree(data_dir, cache_root() / "emoji-split")
        return Bench("folder", str(tree / "train"), image_size or 64, "fid,pr", str(tree / "test"))
    if dataset == "stacked-mnist":
        return Bench(dataset, str(data_dir), image_size or 28, "modes")
    return Bench(dataset, str(data_dir), image_size or 28, "fid,pr")


def reference(bench: Bench) -> ganforge.ImageData:
    return load_config_dataset(bench.config(ganforge.Config()), "train", "reference")


def run_real(bench: Bench, n: int) -> dict:
    """The held-out real images, scored against the training split as if they had been generated."""
    config = bench.config(ganforge.Config())
    if bench.held_out is not None:
        test = load_config_dataset(config.replace(data_dir=bench.held_out), "train", "reference")
    else:
        test = load_config_dataset(config, "test", "reference")
    if n < len(test):
        test = ganforge.ImageData(test.images[:n], test.labels[:n], test.name, test.class_names)
    row = harness.score_images(reference(bench), test, "the real held-out split", bench.metrics, config.dataset,
                               config.data_dir)
    return {"candidate": REAL, "steps": 0, **row}


def score_generator(G: Generator, bench: Bench, n: int, save: Path | None) -> dict:
    """A generator trained outside ganforge (the canonical loop), scored as the runs are."""
    if save is None:
        return evaluate_generator(G, dataset=bench.dataset, data_dir=bench.labelled, n=n, metrics=bench.metrics,
                                  features="classifier")
    write_samples(G, n, save)
    return harness.score_images(reference(bench), load_npz(save), str(save), bench.metrics, bench.dataset,
                                bench.labelled)


def run_canonical(name: str, bench: Bench, budget: float, n: int, seed: int, save: Path | None,
                  max_steps: int | None = None) -> dict:
    data = load_config_dataset(bench.config(ganforge.Config()), "train")
    step, G = canonical_loop(CANONICAL[name], data, 64, torch.device("cpu"), seed)
    steps, t0 = 0, time.perf_counter()
    while (steps < max_steps) if max_steps else (time.perf_counter() - t0 < budget):
        step()
        steps += 1
    G.eval()
    return {"candidate": name, "steps": steps, **score_generator(G, bench, n, save)}


def run_candidate(name: str, bench: Bench, budget: float, n: int, workdir: Path, seed: int,
                  save_dir: Path | None = None, max_steps: int | None = None) -> dict:
    save = None if save_dir is None else save_dir / f"{name}.npz"
    if name == REAL:
        return run_real(bench, n)
    if name in CANONICAL:
        return run_canonical(name, bench, budget, n, seed, save, max_steps)
    preset, extra = CANDIDATES[name]
    config = bench.config(ganforge.Config.from_preset(preset, seed=seed, **extra))
    run = harness.train(config, workdir, name, seconds=budget, steps=max_steps)
    # What the codes mean (metrics.codes), and for a self-conditioned run its clusters' purity, alike.
    extra_metrics = ",codes" if config.codes or run.kind == "self-conditioned" else ""
    return {"candidate": name, "steps": run.step, **harness.score(run, bench.metrics + extra_metrics, n, save)}


def print_table(rows: list[dict]) -> None:
    """One row per candidate; distances also as a ratio of `paper`'s (and `canonical`'s) when they ran."""
    base = next((r for r in rows if r["candidate"] == "paper"), None)
    canon = next((r for r in rows if r["candidate"] == "canonical"), None)
    columns = [("steps", "steps", 7, "{}"), ("FD", "fid", 8, "{:.2f}"), ("recall", "recall", 7, "{:.3f}"),
               ("modes", "modes", 6, "{}"), ("KL", "modes_kl", 7, "{:.3f}"),
               ("classes", "classes_present", 8, "{}"), ("max/min", "class_ratio", 8, "{:.2f}"),
               ("label acc", "label_accuracy", 9, "{:.3f}"), ("code acc", "code_accuracy", 8, "{:.3f}"),
               ("slant rho", "code_slant_rho", 9, "{:.3f}"), ("width rho", "code_width_rho", 9, "{:.3f}")]
    columns = [c for c in columns if any(c[1] in r for r in rows)]
    ratios = [(f"FD / {r['candidate']}", r) for r in (base, canon) if r is not None and "fid" in r]
    width = max([12, *(len(r["candidate"]) for r in rows)])
    print(f"\n{'candidate':<{width}}" + "".join(f" {h:>{w}}" for h, _, w, _ in columns)
          + "".join(f" {h:>{len(h)}}" for h, _ in ratios))
    for r in rows:
        cells = [("-" if r.get(k) is None else f.format(r[k])) for _, k, _, f in columns]
        widths = [w for _, _, w, _ in columns]
        print(f"{r['candidate']:<{width}}" + "".join(f" {c:>{w}}" for c, w in zip(cells, widths, strict=True))
              + "".join(f" {r['fid'] / ref['fid']:>{len(h)}.3f}" for h, ref in ratios))


def main(argv: list[str] | None = None) -> int:
    p = parser("quality", __doc__.split("\n\n")[0])
    p.add_argument("--dataset", choices=DATASETS, default="mnist")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="mnist, fashion-mnist, stacked-mnist: the IDX files; emoji: the folder of images/ and "
                        "emoji.json  [default: ../shared/data/<dataset>, stacked-mnist: mnist]")
    p.add_argument("--image-size", type=int, default=None,
                   help="mnist, stacked-mnist: 28 (default; stacked-mnist also 32); emoji: 64 (default)")
    p.add_argument("--budget", type=float, default=300.0, help="training seconds per candidate")
    p.add_argument("--steps", default="", metavar="NAME=N,...",
                   help="train these candidates for N steps instead of --budget seconds (step-matched anchors do "
                        "not depend on the machine's speed)")
    p.add_argument("--candidates", default="paper,fast,fast-cond",
                   help=f"from {', '.join([*CANONICAL, *CANDIDATES, REAL])}")
    p.add_argument("--n", type=int, default=None,
                   help="samples scored per candidate (default 10,000; stacked-mnist: 26,000, the protocol's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="also write the rows as JSON lines here")
    p.add_argument("--save-samples", type=Path, default=None, metavar="DIR",
                   help="write each candidate's samples to DIR/<candidate>.npz and score that file")
    p.add_argument("--no-paper", action="store_true",
                   help="skip the `paper` run that is otherwise added (and the FD / paper column)")
    p.add_argument("--keep", type=Path, default=None, metavar="DIR",
                   help="train the candidates in DIR/<candidate> and keep the runs (default: a temporary directory)")
    args, _ = setup(p, argv)

    names = [c for c in args.candidates.split(",") if c]
    unknown = [c for c in names if c not in CANDIDATES and c not in CANONICAL and c != REAL]
    if unknown:
        p.error(f"unknown candidate(s) {', '.join(unknown)}; choose from {', '.join([*CANONICAL, *CANDIDATES, REAL])}")
    steps = {k: int(v) for k, _, v in (item.partition("=") for item in args.steps.split(",") if item)}
    if "paper" not in names and not args.no_paper:
        names.append("paper")
    bench = make_bench(args.dataset, args.data_dir, args.image_size)
    n = args.n or default_samples(bench.metrics)
    if args.save_samples:
        args.save_samples.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.keep or Path(tmp)
        for name in names:
            row = run_candidate(name, bench, args.budget, n, workdir, args.seed, args.save_samples,
                                steps.get(name))
            rows.append(row)
            print(json.dumps(row), flush=True)
    print_table(rows)
    if args.out:
        Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return 0
