"""Do other feature networks agree with ganforge's classifier? Score the same sample files under a panel of
independently trained MNIST classifiers of other designs, beside ganforge's own, and print each one's
Fréchet distance, its multiple of that network's real-data floor, and how well the networks agree on the
ranking of the files (Spearman's rho between columns).

    python -m benchmarks quality --budget 300 --no-paper \\
        --candidates canonical,fast --save-samples samples/
    python -m benchmarks features \\
        canonical=samples/canonical.npz fast=samples/fast.npz

A Fréchet distance has no fixed scale: each network's numbers mean something only beside its own. Each panel
member is trained once (seeded, on the train split, one thread) and cached as TorchScript under
``$GANFORGE_DATA/panel/``; its features go through ganforge's own ``--features PATH`` path, so a column is what
``ganforge evaluate RUN --features FILE.pt --samples FILE.npz`` prints. ``real`` is always scored: the test
split against the train statistics, the floor of each column.
"""

from __future__ import annotations

import hashlib
import json
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
from ganforge.files import atomic_path
from ganforge.images import pixels_to_float
from ganforge.metrics import Evaluator, make_extractor, reference_data

from .common import parser, setup


class Penultimate(nn.Module):
    """A classifier split at its penultimate layer: ``body`` -> features, ``head`` -> logits."""

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
            images = pixels_to_float(torch.tensor(train.images))
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
                x = pixels_to_float(torch.tensor(test.images))
                acc = (net.head(net.body(x)).argmax(1).numpy() == test.labels).mean()
    finally:
        torch.set_num_threads(threads)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.jit.save(torch.jit.script(net), str(tmp))
    print(f"panel: {name} trained in {time.perf_counter() - t0:.0f} s, test accuracy {acc:.2%} -> {path}",
          flush=True)
    return path


def spearman(a: list[float], b: list[float]) -> float:
    """Rank correlation of two columns (no ties expected among Fréchet distances)."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def parse_pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise SystemExit(f"{what}: expected NAME=VALUE, got {item!r}")
        out[name] = value
    return out


def main(argv: list[str] | None = None) -> int:
    p = parser("features", __doc__.split("\n\n")[0], data="mnist")
    p.add_argument("samples", nargs="*", help="NAME=FILE.npz: uint8 samples, as `ganforge sample --out` writes")
    p.add_argument("--out", type=Path, default=None, help="also write the table as JSON here")
    args, _ = setup(p, argv)

    files = {k: Path(v) for k, v in parse_pairs(args.samples, "samples").items()}
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
    if len(sets) >= 3:
        print("\nrank agreement with ganforge's classifier (Spearman's rho over the files):")
        names = list(sets)
        for c in cols[1:]:
            print(f"  {c:<14}{spearman([fd['ganforge'][s] for s in names], [fd[c][s] for s in names]):>6.2f}")
    if args.out:
        args.out.write_text(json.dumps({"fd": fd}, indent=1))

    return 0
