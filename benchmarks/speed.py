"""Training-step throughput: ganforge's step against the canonical tutorial loop, side by side, in one run.

The canonical loop is the tutorials' (canonical.py: DataLoader, Sigmoid + BCELoss, separate real and fake
passes, float32). Both train the same architecture (ganforge's layers) on the same synthetic images, on the
same device.

Measurements are interleaved (a window of each variant in turn, repeated), so a shared, noisy machine
slows all of them alike; the table gives the median over windows of wall-clock img/s, and of img per
CPU-second (process time: what the step costs, independent of how many other jobs share the cores).

    python -m benchmarks speed                          # every architecture, ganforge defaults vs canonical
    python -m benchmarks speed --arch mnist-dcgan --ablation --rounds 12
    python -m benchmarks speed --arch mnist-dcgan --compile    # adds torch.compile and its compile time
    python -m benchmarks speed --arch mnist-dcgan --preset fast --ablation   # the recipe of --preset fast
    python -m benchmarks speed --arch mnist-resnet --preset r3gan --ablation  # vs DCGAN --preset fast, 28 px
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from ganforge import Config, ImageData
from ganforge.presets import PRESETS
from ganforge.run import Run
from ganforge.training.performance import cpu_has_amx
from ganforge.training.trainer import Trainer

from .canonical import canonical_loop, tutorial_layers
from .common import parser, setup


@dataclass(frozen=True)
class Arch:
    name: str
    model: str
    channels: int
    size: int
    window: int  # steps per timed window
    rounds: int


ARCHS = {
    "mnist-dcgan": Arch("mnist-dcgan", "dcgan", 1, 28, window=3, rounds=8),
    "dcgan64": Arch("dcgan64", "dcgan", 3, 64, window=1, rounds=3),
    "mlp": Arch("mlp", "mlp", 1, 28, window=5, rounds=6),
    # The ResNet family: its rows add DCGAN at the same resolution (--family-preset's recipe vs --dcgan-preset's).
    "mnist-resnet": Arch("mnist-resnet", "resnet", 1, 28, window=2, rounds=4),
    "resnet64": Arch("resnet64", "resnet", 3, 64, window=1, rounds=3),
}


def synthetic(arch: Arch, n: int) -> ImageData:
    rng = np.random.default_rng(0)
    return ImageData(rng.integers(0, 256, (n, arch.channels, arch.size, arch.size), dtype=np.uint8), None, "synthetic")


def ganforge_step(arch: Arch, data: ImageData, batch: int, device: torch.device, tmp: Path, preset: str | None,
                  conv_ends: bool = False, **options) -> Callable[[], torch.Tensor]:
    """The library's own Trainer.train_step (batcher, EMA update and all), with ``options`` as Config fields.

    ``conv_ends``: DCGAN's first and last layers run as the tutorials' convolutions, not as matrix products.
    """
    fields = dict(model=arch.model, batch_size=batch, device=str(device), out=str(tmp), **options)
    cfg = Config.from_preset(preset, **fields) if preset else Config(**fields)
    trainer = Trainer(cfg, Run(tmp), data=data, progress=False)
    if conv_ends:
        tutorial_layers(trainer.G), tutorial_layers(trainer.D)
    return trainer.train_step


class FlopCount(TorchDispatchMode):
    """FLOPs of the matrix products and convolutions run inside it, by torch's own formulas. (FlopCounterMode's
    module hooks break ``autograd.grad`` on a leaf, which R1 and R2 take.)"""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        out = func(*args, **(kwargs or {}))
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **(kwargs or {}), out_val=out)
        return out


def step_flops(step: Callable[[], object], steps: int) -> float:
    """FLOPs per step over ``steps`` steps (a whole period of the lazy penalties)."""
    with FlopCount() as counter:
        for _ in range(steps):
            step()
    return counter.total / steps


def cpu_peak_gflops(fma_units: int, clock_ghz: float | None) -> tuple[float, str] | None:
    """cores × FMA units × fp32 SIMD lanes × 2 (multiply + add) × clock, with the assumption spelled out."""
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    if clock_ghz is None:
        named = re.search(r"model name.*@\s*([\d.]+)GHz", flags)
        mhz = re.search(r"cpu MHz\s*:\s*([\d.]+)", flags)
        clock_ghz = float(named.group(1)) if named else float(mhz.group(1)) / 1000 if mhz else None
    if clock_ghz is None:
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    peak = cores * fma_units * lanes * 2 * clock_ghz
    return peak, f"{cores} cores × {fma_units} FMA units × {lanes} fp32 lanes × 2 × {clock_ghz:.2f} GHz"


def measure(variants: dict[str, Callable[[], object]], window: int, rounds: int,
            device: torch.device) -> dict[str, tuple[list[float], list[float]]]:
    """Interleaved windows: per variant, lists of per-window wall and CPU seconds per step."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    out: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in variants}
    for _ in range(rounds):
        for name, step in variants.items():
            sync()
            w0, c0 = time.perf_counter(), time.process_time()
            for _ in range(window):
                step()
            sync()
            out[name][0].append((time.perf_counter() - w0) / window)
            out[name][1].append((time.process_time() - c0) / window)
    return out


def run_arch(arch: Arch, args: argparse.Namespace, device: torch.device, peak: tuple[float, str] | None) -> None:
    batch = args.batch
    data = synthetic(arch, max(20 * batch, 1024))
    rounds = args.rounds or arch.rounds
    with tempfile.TemporaryDirectory() as tmp:
        recipe = Config(preset=args.preset)
        # Lazy R1/R2 come every r1_every steps: windows and FLOP counts span whole periods, so they are in them.
        period = recipe.r1_every if recipe.r1_gamma > 0 else 1
        window = -(-arch.window // period) * period
        widths = {k: getattr(recipe, k) for k in ("ngf", "ndf", "z_dim")} if args.preset else {}
        variants: dict[str, Callable[[], object]] = {
            "canonical": canonical_loop(arch.model, data, batch, device, **widths)[0]}
        gstep = partial(ganforge_step, arch, data, batch, device, preset=args.preset)
        variants["ganforge"] = gstep(Path(tmp) / "default")
        if arch.model == "resnet":  # the family against DCGAN at the same resolution, each with its recipe
            dcgan = Arch(f"{arch.name} dcgan", "dcgan", arch.channels, arch.size, arch.window, arch.rounds)
            variants["ganforge dcgan"] = ganforge_step(dcgan, data, batch, device, Path(tmp) / "dcgan",
                                                       preset=args.versus)
        if args.ablation:
            if arch.model == "dcgan":
                variants["ganforge conv ends"] = gstep(Path(tmp) / "conv", conv_ends=True)
            for amp, cl in (("off", "off"), ("off", "on"), ("bf16", "off"), ("bf16", "on")):
                try:
                    variants[f"ganforge amp={amp} cl={cl}"] = gstep(Path(tmp) / f"{amp}{cl}", amp=amp,
                                                                    channels_last=cl)
                except Exception as e:  # e.g. bf16 where the device has none
                    print(f"  (skipping amp={amp} cl={cl}: {e})")
        compile_s = None
        if args.compile:
            compiled = gstep(Path(tmp) / "compiled", compile=True)
            t0 = time.perf_counter()
            for _ in range(3):  # compiles G, D, and D without grad for the G step
                compiled()
            compile_s = time.perf_counter() - t0
            variants["ganforge compile"] = compiled
        if args.cuda_graphs:
            graphs = gstep(Path(tmp) / "graphs", cuda_graphs=True)
            for _ in range(3):  # compile and record
                graphs()
            variants["ganforge cuda-graphs"] = graphs
        # Counting also warms each variant up; a compiled step has the FLOPs of the plain one (and the
        # counter would trace through the compiled code), so it is not counted again.
        compiled_names = ("ganforge compile", "ganforge cuda-graphs")
        flops = {k: step_flops(v, period) for k, v in variants.items() if k not in compiled_names}
        flops.update({k: flops["ganforge"] for k in compiled_names if k in variants})
        for step in variants.values():
            step()
        times = measure(variants, window, rounds, device)

    base_wall = statistics.median(times["canonical"][0])
    base_cpu = statistics.median(times["canonical"][1])
    print(f"\n== {arch.name}: {arch.channels}×{arch.size}×{arch.size}, batch {batch}, {device}, "
          f"{torch.get_num_threads()} threads, {rounds} rounds × {window} steps")
    if args.preset:
        print(f"ganforge rows train --preset {args.preset}; the canonical loop the tutorial recipe at its widths "
              f"({', '.join(f'{k}={v}' for k, v in widths.items())}), so that ratio mixes loop and recipe")
    print(f"{'variant':28s} {'img/s':>8s} {'ratio':>6s} {'img/CPU-s':>10s} {'ratio':>6s} {'GFLOP/step':>10s} {'GFLOP/s':>8s}")
    for name, (wall, cpu) in times.items():
        w, c = statistics.median(wall), statistics.median(cpu)
        print(f"{name:28s} {batch / w:8.1f} {base_wall / w:5.2f}x {batch / c:10.1f} {base_cpu / c:5.2f}x "
              f"{flops[name] / 1e9:10.2f} {flops[name] / 1e9 / w:8.1f}")
    if "ganforge dcgan" in times:
        ratio = statistics.median(times["ganforge dcgan"][0]) / statistics.median(times["ganforge"][0])
        print(f"resnet ({args.preset or 'defaults'}) / dcgan ({args.versus}): {ratio:.3f}× the images per second")
    if peak is not None:
        print(f"machine fp32 peak: {peak[0]:.0f} GFLOP/s ({peak[1]}; the FMA-unit count is an assumption)")
        if cpu_has_amx():
            print("  (bf16 runs on AMX tiles, whose peak is far above the fp32 figure: 1024 bf16 FLOP/cycle/core)")
    if compile_s is not None:
        plain, comp = statistics.median(times["ganforge"][0]), statistics.median(times["ganforge compile"][0])
        gain = plain - comp
        even = f"breaks even after {compile_s / gain:.0f} steps ({compile_s / gain * comp:.0f} s)" if gain > 0 \
            else "never breaks even (no faster per step)"
        print(f"torch.compile: {compile_s:.1f} s to compile; {even}")


def main(argv: list[str] | None = None) -> int:
    ap = parser("speed", __doc__)
    ap.add_argument("--arch", default=",".join(ARCHS), help=f"comma-separated, from {', '.join(ARCHS)}")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default: per architecture)")
    ap.add_argument("--preset", default=None, choices=sorted(PRESETS),
                    help="ganforge rows train this preset's recipe (default: the library defaults)")
    ap.add_argument("--versus", default="fast", choices=sorted(PRESETS),
                    help="resnet architectures: the preset of the DCGAN they are compared with  [default: fast]")
    ap.add_argument("--ablation", action="store_true", help="also each amp × channels-last combination")
    ap.add_argument("--compile", action="store_true", help="also ganforge with torch.compile, and its compile time")
    ap.add_argument("--cuda-graphs", action="store_true", help="also ganforge with --cuda-graphs (CUDA only)")
    ap.add_argument("--fma-units", type=int, default=2, help="FMA units per core assumed for the fp32 peak")
    ap.add_argument("--clock-ghz", type=float, default=None, help="clock for the peak (default: /proc/cpuinfo)")
    args, device = setup(ap, argv)
    peak = cpu_peak_gflops(args.fma_units, args.clock_ghz) if device.type == "cpu" else None
    unknown = [a for a in args.arch.split(",") if a not in ARCHS]
    if unknown:
        ap.error(f"--arch: unknown {', '.join(unknown)}; choose from {', '.join(ARCHS)}")
    for name in args.arch.split(","):
        run_arch(ARCHS[name], args, device, peak)
    return 0
