"""kill -9 soak: crash a tiny training again and again, resume it each time, compare it with an unkilled run.

The CI test (tests/test_faults.py) survives 7 kills; this runs as many as you ask for, with the same harness
(tests/crash_harness.py): kills at seeded random moments of start-up and of the training loop, and at the
named fault points inside checkpoint writes, between a checkpoint and latest.pt, and inside the dataset
preparation. At the end, generator.safetensors must be bit-equal to the uninterrupted run's, and latest.pt,
every sample grid and every metrics.jsonl row (less the clock) equal too.

    python benchmarks/soak.py --kills 50 --seed 1
    python benchmarks/soak.py --kills 200 --seed 2 --steps 3000 --keep /tmp/soak   # keep the runs to look at
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tests/crash_harness.py

from tests.crash_harness import (  # noqa: E402
    compare_runs,
    crashed_run,
    kill_plan,
    straight_run,
    write_dataset,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=30, help="kills to survive")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill plan (kinds, delays, counts)")
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps (default 15 per kill: the run must outlast its kills)")
    parser.add_argument("--keep", type=Path, default=None, help="work in this directory and keep it")
    args = parser.parse_args()
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


if __name__ == "__main__":
    sys.exit(main())
