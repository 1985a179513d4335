"""How far does ganforge's classifier-feature distance predict another classifier's? Score the same sample
files under a panel of independently trained MNIST classifiers of other designs, beside ganforge's own, and
map each one's distances onto a judge whose numbers are known for some of the files.

    python benchmarks/quality.py --data-dir ../shared/data/mnist --budget 300 --no-paper \\
        --candidates canonical,canonical-mlp --save-samples anchors/
    python benchmarks/judge_panel.py --data-dir ../shared/data/mnist \\
        canonical=anchors/canonical.npz mlp=anchors/canonical-mlp.npz fast=s.npz \\
        --judge real=2,canonical=256,mlp=153

The issue states its judge (a held-out MNIST classifier's Fréchet distance, which we do not have) only at a
few points: real MNIST against itself, the tutorials' DCGAN and MLP GAN after 300 s. Each panel member is
trained once (seeded, on the train split, one thread) and cached as TorchScript under
``$GANFORGE_DATA/panel/``; its features go through ganforge's own ``--features PATH`` path, so a column is
what ``ganforge evaluate RUN --features FILE.pt --samples FILE.npz`` prints. ``real`` is always scored: the
test split against the train statistics, the floor of each column.

With ``--judge``, each column gets a power law ``judge = a * FD^b`` fitted (least squares in log-log) to the
named files, and prints its prediction of the judge's number for every file. Where columns of different
designs agree, the prediction does not hinge on the judge's design; where they differ, the spread is the
honest error bar.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import ganforge
from ganforge.data.npz import load_npz
from ganforge.download import cache_root
from ganforge.metrics import Evaluator, make_extractor, reference_data


class Penultimate(nn.Module):
    """A classifier split where a judge would read it: ``body`` -> features, ``head`` -> logits."""

    def __init__(self, body: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.body, self.head = body, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # float [N, 1, 28, 28] in [-1, 1] -> [N, D]
        return self.body(x)


def lenet5() -> Penultimate:
    """LeCun et al. 1998 with ReLU and max-pooling, as most re-implementations write it; features: F6 (84)."""
    body = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU())
    return Penultimate(body, nn.Linear(84, 10))


def torch_example() -> Penultimate:
    """The network of PyTorch's examples/mnist; features: the 128-unit hidden layer after ReLU."""
    body = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Dropout(0.25), nn.Flatten(), nn.Linear(9216, 128), nn.ReLU())
    return Penultimate(body, nn.Sequential(nn.Dropout(0.5), nn.Linear(128, 10)))


def mlp() -> Penultimate:
    """A fully connected 784-512-256-10 classifier; features: the 256-unit layer after ReLU."""
    body = nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU())
    return Penultimate(body, nn.Linear(256, 10))


PANEL: dict[str, Callable[[], Penultimate]] = {"lenet5": lenet5, "torch-example": torch_example, "mlp": mlp}
RECIPE = {"version": 1, "epochs": 2, "batch_size": 128, "lr": 1e-3, "seed": 0}


def panel_path(name: str) -> Path:
    key = hashlib.sha256(json.dumps({**RECIPE, "net": name}, sort_keys=True).encode()).hexdigest()[:12]
    return cache_root() / "panel" / f"mnist-{name}-{key}.pt"


def train_member(name: str, train: ganforge.ImageData, test: ganforge.ImageData) -> Path:
    """Train one panel classifier (cached), save its feature part as TorchScript; returns the file."""
    path = panel_path(name)
    if path.is_file():
        return path
    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RECIPE["seed"])
            net = PANEL[name]()
            opt = torch.optim.Adam(net.parameters(), lr=RECIPE["lr"])
            images = torch.tensor(train.images).float().div_(127.5).sub_(1.0)
            labels = torch.tensor(train.labels)
            bs = RECIPE["batch_size"]
            net.train()
            for _ in range(RECIPE["epochs"]):
                for idx in torch.randperm(len(images)).split(bs):
                    loss = F.cross_entropy(net.head(net.body(images[idx])), labels[idx])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
            net.eval()
            with torch.no_grad():
                x = torch.tensor(test.images).float().div_(127.5).sub_(1.0)
                acc = (net.head(net.body(x)).argmax(1).numpy() == test.labels).mean()
    finally:
        torch.set_num_threads(threads)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.jit.save(torch.jit.script(net), str(tmp))
    tmp.replace(path)
    print(f"panel: {name} trained in {time.perf_counter() - t0:.0f} s, test accuracy {acc:.2%} -> {path}",
          flush=True)
    return path


def fit_power_law(fd: dict[str, float], judge: dict[str, float]) -> tuple[float, float]:
    """(log a, b) of judge = a * fd^b over the files both name; b = 1 when only one point is shared."""
    keys = [k for k in judge if k in fd]
    if not keys:
        raise SystemExit(f"--judge names none of the scored files ({', '.join(fd)})")
    x = np.log([fd[k] for k in keys])
    y = np.log([judge[k] for k in keys])
    if len(keys) == 1:
        return float(y[0] - x[0]), 1.0
    b, log_a = np.polyfit(x, y, 1)
    return float(log_a), float(b)


def parse_pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise SystemExit(f"{what}: expected NAME=VALUE, got {item!r}")
        out[name] = value
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("samples", nargs="*", help="NAME=FILE.npz: uint8 samples, as `ganforge sample --out` writes")
    parser.add_argument("--data-dir", required=True, help="folder with the MNIST IDX files")
    parser.add_argument("--judge", default="", help="NAME=FD,...: the judge's known distances (e.g. real=2)")
    parser.add_argument("--out", type=Path, default=None, help="also write the table as JSON here")
    args = parser.parse_args()

    files = {k: Path(v) for k, v in parse_pairs(args.samples, "samples").items()}
    judge = {k: float(v) for k, v in parse_pairs([j for j in args.judge.split(",") if j], "--judge").items()}
    if "real" in files:
        raise SystemExit("samples: 'real' is the test split, scored always; name your file otherwise")
    train = reference_data("mnist", args.data_dir)
    test = reference_data("mnist", args.data_dir, split="test")
    extractors = {"ganforge": make_extractor("classifier", "mnist", args.data_dir, 28)}
    for name in PANEL:
        extractors[name] = make_extractor(str(train_member(name, train, test)), "mnist", args.data_dir, 28)

    sets = {"real": test, **{k: load_npz(p) for k, p in files.items()}}
    fd: dict[str, dict[str, float]] = {e: {} for e in extractors}
    for ename, extractor in extractors.items():
        evaluator = Evaluator(train, extractor, ("fid",))
        for sname, images in sets.items():
            fd[ename][sname] = evaluator.score_images(images, sname)["fid"]

    cols = list(extractors)
    print("\nFréchet distance (10k-sample sets against the 60k train statistics), and as a multiple of 'real':")
    print(f"{'samples':<14}" + "".join(f"{c:>16}" for c in cols))
    for s in sets:
        print(f"{s:<14}" + "".join(f"{fd[c][s]:>9.2f} ({fd[c][s] / fd[c]['real']:>4.0f}×)" for c in cols))
    predictions: dict[str, dict[str, float]] = {}
    if judge:
        print(f"\nthe judge's distance predicted from each column (power law fitted to {', '.join(judge)}):")
        print(f"{'samples':<14}" + "".join(f"{c:>16}" for c in cols) + f"{'judge':>10}")
        laws = {c: fit_power_law(fd[c], judge) for c in cols}
        for s in sets:
            predictions[s] = {c: math.exp(laws[c][0]) * fd[c][s] ** laws[c][1] for c in cols}
            known = f"{judge[s]:>10.1f}" if s in judge else f"{'?':>10}"
            print(f"{s:<14}" + "".join(f"{predictions[s][c]:>16.1f}" for c in cols) + known)
        print(f"{'exponent b':<14}" + "".join(f"{laws[c][1]:>16.2f}" for c in cols))
    if args.out:
        args.out.write_text(json.dumps({"fd": fd, "judge": judge, "predicted": predictions}, indent=1))


if __name__ == "__main__":
    main()
