"""What refreshing report.html costs a training run: refresh time / training time, target under 1 %.

Trains MNIST with ``--preset fast`` for ``--time-limit`` seconds, checkpointing every ``--checkpoint-every``
steps, and times every refresh of the report the trainer makes (after each checkpoint, and the final one,
which also draws the final grid and the class sweep from generator.safetensors). Wall time and process CPU
time are both given: CPU time stays meaningful when other jobs share the cores.

    python benchmarks/report_cost.py --data-dir ../shared/data/mnist --time-limit 300 --checkpoint-every 1000

On a machine too busy for the 5,000 steps such a run makes alone, keep the page and the number of refreshes
alike with a denser cadence, e.g. ``--time-limit 120 --checkpoint-every 25 --log-every 2 --sample-every 12``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import ganforge
from ganforge.training import outputs

TARGET = 0.01


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="../shared/data/mnist")
    ap.add_argument("--time-limit", type=float, default=300.0, help="seconds of training")
    ap.add_argument("--checkpoint-every", type=int, default=1000)
    ap.add_argument("--log-every", type=int, default=50, help="rows on the page: --preset fast's defaults")
    ap.add_argument("--sample-every", type=int, default=500, help="sample grids on the page")
    ap.add_argument("--out", default=None, help="run directory (default: a temporary one)")
    args = ap.parse_args()

    calls: list[tuple[float, float]] = []  # (wall, cpu) seconds of each refresh
    write_report = outputs.write_report

    def timed(path: Path, out: Path | None = None) -> Path:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return write_report(path, out)
        finally:
            calls.append((time.perf_counter() - wall, time.process_time() - cpu))

    outputs.write_report = timed
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or str(Path(tmp) / "run")
        config = ganforge.Config(dataset="mnist", data_dir=args.data_dir, preset="fast", time_limit=args.time_limit,
                                 checkpoint_every=args.checkpoint_every, log_every=args.log_every,
                                 sample_every=args.sample_every, out=out)
        wall, cpu = time.perf_counter(), time.process_time()
        run = ganforge.train(config, progress=False)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        size = (run.path / "report.html").stat().st_size
        rows = len((run.path / "metrics.jsonl").read_text().splitlines())
        grids = len(list((run.path / "samples").glob("step-*.png")))

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


if __name__ == "__main__":
    main()
