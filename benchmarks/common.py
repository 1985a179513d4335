"""What every benchmark shares: one rule for where the data is, the thread count and the device."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ganforge.device import resolve_device

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"  # the real data sets beside the repository


def parser(name: str, description: str, data: str | None = None) -> argparse.ArgumentParser:
    """An argument parser for ``python -m benchmarks NAME`` with the shared options: ``--threads``, ``--device``
    and, for a benchmark that reads a data set, ``--data-dir`` (default: ``../shared/data/DATA``)."""
    p = argparse.ArgumentParser(prog=f"python -m benchmarks {name}", description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    if data is not None:
        p.add_argument("--data-dir", type=Path, default=SHARED_DATA / data,
                       help=f"the {data} files  [default: ../shared/data/{data} beside the repository]")
    p.add_argument("--threads", type=int, default=None, help="torch threads  [default: torch's, one per core]")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps  [default: auto]")
    return p


def setup(p: argparse.ArgumentParser, argv: list[str] | None) -> tuple[argparse.Namespace, torch.device]:
    """Parse ``argv``, check the data directory, set the threads; returns the options and the device."""
    args = p.parse_args(argv)
    data_dir = getattr(args, "data_dir", None)
    if data_dir is not None and not Path(data_dir).exists():
        p.error(f"--data-dir: {data_dir} does not exist (the real data sets live in ../shared/data)")
    if args.threads:
        torch.set_num_threads(args.threads)
    return args, resolve_device(args.device)
