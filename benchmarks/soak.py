"""kill -9 soak: crash a tiny training again and again, resume it each time, compare it with an unkilled run.

The CI test (tests/test_faults.py) survives 7 kills; this runs as many as you ask for, with the same harness
(tests/crash_harness.py): kills at seeded random moments of start-up and of the training loop, and at the
named fault points inside checkpoint writes, between a checkpoint and latest.pt, and inside the dataset
preparation. At the end, generator.safetensors must be bit-equal to the uninterrupted run's, and latest.pt,
every sample grid and every metrics.jsonl row (less the clock) equal too.

    python -m benchmarks soak --kills 50 --seed 1
    python -m benchmarks soak --kills 200 --seed 2 --steps 3000 --keep /tmp/soak   # keep the runs to look at
"""

from __future__ import annotations

import collections
import sys
import tempfile
import time
from pathlib import Path

from tests.crash_harness import (
    compare_runs,
    crashed_run,
    kill_plan,
    straight_run,
    write_dataset,
)

from .common import parser, setup


def main(argv: list[str] | None = None) -> int:
    p = parser("soak", __doc__.split("\n")[0])
    p.add_argument("--kills", type=int, default=30, help="kills to survive")
    p.add_argument("--seed", type=int, default=0, help="seed of the kill plan (kinds, delays, counts)")
    p.add_argument("--steps", type=int, default=None,
                   help="training steps (default 15 per kill: the run must outlast its kills)")
    p.add_argument("--keep", type=Path, default=None, help="work in this directory and keep it")
    args, _ = setup(p, argv)
    steps = args.steps or 15 * args.kills
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        data = write_dataset(work / "data.npz")
        t0 = time.perf_counter()
        reference = straight_run(work, data, steps)
        report = crashed_run(work, data, steps, kill_plan(args.kills, args.seed))
        err = reference.communicate()[1]
        if reference.returncode != 0:
            print(f"the uninterrupted run failed:\n{err}", file=sys.stderr)
            return 1
        compare_runs(work / "crashed", work / "straight")
        kinds = collections.Counter(k.split("+")[0].split(":")[0] for k in report.killed)
        by_kind = ", ".join(f"{n} {kind}" for kind, n in kinds.most_common())
        print(f"{len(report.killed)} kills survived in {report.launches} launches over {steps} steps "
              f"({time.perf_counter() - t0:.0f} s): {by_kind}")
        if report.missed:
            print(f"{len(report.missed)} planned kills came after the run had finished (raise --steps)")
        print("generator.safetensors, latest.pt, sample grids and metrics rows equal to the run never killed")
    return 0
