"""What refreshing report.html costs a training run: refresh time / training time, target under 1 %.

Trains MNIST with ``--preset fast`` for ``--time-limit`` seconds, checkpointing every ``--checkpoint-every``
steps, and times every refresh of the report the trainer makes (after each checkpoint, and the final one,
which also draws the final grid and the class sweep from generator.safetensors). Wall time and process CPU
time are both given: CPU time stays meaningful when other jobs share the cores.

    python -m benchmarks report --time-limit 300 --checkpoint-every 1000

On a machine too busy for the 5,000 steps such a run makes alone, keep the page and the number of refreshes
alike with a denser cadence, e.g. ``--time-limit 120 --checkpoint-every 25 --log-every 2 --sample-every 12``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import ganforge
from ganforge.training.callbacks import Callback, Report

from .common import parser, setup

TARGET = 0.01


class Clock(Callback):
    """The run's wall and CPU time from its first step to its end, and the report's refreshes over it."""

    def on_start(self, trainer) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def on_end(self, trainer) -> None:  # runs after the built-in callbacks: the final refresh is done
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        self.refreshes = next(c for c in trainer.callbacks if isinstance(c, Report)).refreshes


def main(argv: list[str] | None = None) -> int:
    ap = parser("report", __doc__.splitlines()[0], data="mnist")
    ap.add_argument("--time-limit", type=float, default=300.0, help="seconds of training")
    ap.add_argument("--checkpoint-every", type=int, default=1000)
    ap.add_argument("--log-every", type=int, default=50, help="rows on the page: --preset fast's defaults")
    ap.add_argument("--sample-every", type=int, default=500, help="sample grids on the page")
    ap.add_argument("--out", default=None, help="run directory (default: a temporary one)")
    args, _ = setup(ap, argv)

    clock = Clock()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or str(Path(tmp) / "run")
        config = ganforge.Config(dataset="mnist", data_dir=str(args.data_dir), preset="fast",
                                 time_limit=args.time_limit, checkpoint_every=args.checkpoint_every,
                                 log_every=args.log_every, sample_every=args.sample_every, out=out)
        run = ganforge.train(config, progress=False, callbacks=[clock])
        size = run.report.stat().st_size
        rows, grids = len(run.rows()), len(run.sample_grids())

    wall, cpu, calls = clock.wall, clock.cpu, clock.refreshes
    checkpoints = run.step // args.checkpoint_every
    print(f"MNIST --preset fast, {run.step} steps in {wall:.0f} s ({run.step / wall:.1f} steps/s), checkpoint every "
          f"{args.checkpoint_every}: {checkpoints} checkpoints, {len(calls)} refreshes (the last at the end); "
          f"the page: {rows} rows, {grids} sample grids, {size / 1e6:.2f} MB")
    for i, (w, c) in enumerate(calls):
        print(f"  refresh {i + 1}: {1000 * w:.0f} ms wall, {1000 * c:.0f} ms CPU")
    total_wall, total_cpu = sum(w for w, _ in calls), sum(c for _, c in calls)
    share_wall, share_cpu = total_wall / wall, total_cpu / cpu
    print(f"refreshes / training: {100 * share_wall:.3f} % of the wall time, {100 * share_cpu:.3f} % of the CPU time "
          f"(target under {100 * TARGET:.0f} %: {'met' if max(share_wall, share_cpu) < TARGET else 'MISSED'})")
    return 0
