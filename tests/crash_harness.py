"""kill -9 a training again and again, resuming it each time, and compare it with a run that was never killed.

The kills come at seeded random moments (a delay after the process starts, or after its training loop
starts) and at the named points of ``ganforge.faults`` (inside a checkpoint write, between a checkpoint and
latest.pt, inside a dataset preparation). Used by tests/test_faults.py (a few kills) and
``python -m benchmarks soak`` (as many as you like).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import ganforge

SRC = Path(ganforge.__file__).resolve().parents[1]
# A tiny conditional DCGAN on 8×8 images: a step takes milliseconds, so the kills land all over the loop.
# The ResNet family with R3GAN's recipe and schedules, as small.
RESNET_OPTIONS = ["--dataset", "npz", "--preset", "r3gan", "--widths", "8", "--blocks", "1", "--cardinality", "2",
                  "--conditional", "--z-dim", "16", "--batch-size", "16", "--checkpoint-every", "5", "--log-every",
                  "3", "--sample-every", "10", "--keep-checkpoints", "2", "--device", "cpu", "--no-progress"]
TRAIN_OPTIONS = ["--dataset", "npz", "--model", "dcgan", "--conditional", "--ngf", "8", "--ndf", "8",
                 "--z-dim", "16", "--batch-size", "16", "--checkpoint-every", "5", "--log-every", "3",
                 "--sample-every", "10", "--keep-checkpoints", "2", "--device", "cpu", "--no-progress"]
VOLATILE = ("seconds", "img_per_s", "alarm")  # metrics.jsonl fields that depend on the clock, not the weights
LAUNCH_TIMEOUT = 300


@dataclass
class Kill:
    kind: str  # "start" (a delay after the process starts), "training" (after its loop starts), a fault point
    delay: float = 0.0
    nth: int = 1  # fault points: die the nth time the point is reached

    def __str__(self) -> str:
        timed = self.kind in ("start", "training")
        return f"{self.kind}+{self.delay:.2f}s" if timed else f"{self.kind}:{self.nth}"


@dataclass
class CrashReport:
    killed: list[str] = field(default_factory=list)  # the kills that hit a running process
    missed: list[str] = field(default_factory=list)  # planned kills that came after the process had finished
    launches: int = 0


def kill_plan(n: int, seed: int) -> list[Kill]:
    """``n`` kills: first one of each kind (so every kind is covered even for small n), then random ones."""
    rng = random.Random(seed)
    first = [Kill("start", 0.0), Kill("prepare"), Kill("checkpoint-write", nth=2), Kill("checkpoint-link"),
             Kill("training", rng.uniform(0.1, 0.5))]
    kinds = ["training"] * 4 + ["start", "checkpoint-write", "checkpoint-link", "prepare"]
    rest = []
    for _ in range(max(0, n - len(first))):
        kind = rng.choice(kinds)
        nth = 1 if kind == "prepare" else rng.randint(1, 3)  # a launch prepares once, and checkpoints often
        rest.append(Kill(kind, rng.uniform(0.0, 8.0 if kind == "start" else 1.0), nth))
    return (first + rest)[:n]


def write_dataset(path: Path, n: int = 96, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    np.savez(path, images=rng.integers(0, 256, (n, 8, 8), dtype=np.uint8), labels=np.arange(n) % 3)
    return path


def _environment(cache: Path, kill: Kill | None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "GANFORGE_DATA": str(cache), "OMP_NUM_THREADS": "1"}
    env.pop("GANFORGE_KILL_AT", None)
    if kill is not None and kill.kind not in ("start", "training"):
        env["GANFORGE_KILL_AT"] = f"{kill.kind}:{kill.nth}"
    return env


def launch(run: Path, data: Path, steps: int, cache: Path, kill: Kill | None = None,
           options: list[str] = TRAIN_OPTIONS) -> tuple[int, str]:
    """Start (or, once it has a config.yaml, resume) the training of ``run``, kill it as ``kill`` says, and
    return its exit code (-9 when killed) and stderr."""
    if (run / "config.yaml").is_file():
        cmd = ["train", "--resume", str(run), "--no-progress"]
    else:  # what a user does when the first attempt died before writing config.yaml: the same command again
        cmd = ["train", "--out", str(run), "--data-dir", str(data), "--steps", str(steps), *options]
    proc = subprocess.Popen([sys.executable, "-m", "ganforge", *cmd], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=_environment(cache, kill))
    lines = []
    if kill is not None and kill.kind == "training":
        for line in proc.stderr:  # the log line just before the loop starts
            lines.append(line)
            if " from step " in line:
                break
    if kill is not None and kill.kind in ("start", "training"):
        time.sleep(kill.delay)
        proc.send_signal(signal.SIGKILL)
    try:
        rest = proc.communicate(timeout=LAUNCH_TIMEOUT)[1]
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"ganforge {' '.join(cmd)} hung for {LAUNCH_TIMEOUT} s") from None
    return proc.returncode, "".join(lines) + rest


def _check_launch(code: int, err: str, what: str) -> None:
    assert code in (0, -signal.SIGKILL), f"{what} exited with {code}:\n{err}"
    assert "Traceback" not in err, f"{what}:\n{err}"


def straight_run(work: Path, data: Path, steps: int, options: list[str] = TRAIN_OPTIONS) -> subprocess.Popen:
    """The reference: the same training, never killed (started in the background; wait for it)."""
    cmd = ["train", "--out", str(work / "straight"), "--data-dir", str(data), "--steps", str(steps), *options]
    env = _environment(work / "straight-cache", None)
    return subprocess.Popen([sys.executable, "-m", "ganforge", *cmd], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env)


def crashed_run(work: Path, data: Path, steps: int, kills: list[Kill], options: list[str] = TRAIN_OPTIONS
                ) -> CrashReport:
    """Train ``work/crashed`` to ``steps`` through every kill of ``kills``, resuming after each one."""
    run, cache, report = work / "crashed", work / "crashed-cache", CrashReport()
    done = False
    for kill in kills:
        if done:
            report.missed.append(str(kill))
            continue
        if kill.kind == "prepare":  # make this launch prepare the dataset again
            shutil.rmtree(cache / "prepared", ignore_errors=True)
        code, err = launch(run, data, steps, cache, kill, options)
        report.launches += 1
        _check_launch(code, err, f"launch {report.launches} (kill {kill})")
        if code == 0:
            done = True
            report.missed.append(str(kill))
        else:
            report.killed.append(str(kill))
            check_metrics(run)
    if not done:
        code, err = launch(run, data, steps, cache, options=options)
        report.launches += 1
        _check_launch(code, err, "the last resume")
        assert code == 0, err
    leftovers = [p for p in (cache / "prepared").iterdir() if p.name.startswith(".") and p.is_dir()]
    assert not leftovers, leftovers  # temporary folders of killed preparations were cleaned up
    return report


def metric_rows(run: Path) -> list[dict]:
    return ganforge.Run.open(run).rows()


def check_metrics(run: Path, log_every: int = 3) -> None:
    """Rows parse (a torn last row is allowed until the next resume), steps strictly increase, and no gap is
    wider than a log interval."""
    if not (run / "metrics.jsonl").is_file():
        return
    lines = (run / "metrics.jsonl").read_text().splitlines()
    steps = []
    for i, line in enumerate(lines):
        try:
            steps.append(json.loads(line)["step"])
        except ValueError:
            assert i == len(lines) - 1, f"torn row {line!r} in the middle of {run}/metrics.jsonl"
    assert steps == sorted(set(steps)), steps
    gaps = np.diff([0, *steps])
    assert (gaps <= log_every).all(), steps


def compare_runs(crashed: Path, straight: Path) -> None:
    """All but the clock: generator.safetensors bytes, latest.pt tensors, sample grids, metrics rows."""
    generator = "generator.safetensors"
    assert (crashed / generator).read_bytes() == (straight / generator).read_bytes()
    a = torch.load(crashed / "checkpoints" / "latest.pt", weights_only=True)
    b = torch.load(straight / "checkpoints" / "latest.pt", weights_only=True)
    for part in ("generator", "discriminator", "ema"):
        assert a[part].keys() == b[part].keys()
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part
    assert a["opt_g"]["state"].keys() == b["opt_g"]["state"].keys()
    assert all(torch.equal(a["opt_g"]["state"][k]["exp_avg"], b["opt_g"]["state"][k]["exp_avg"])
               for k in a["opt_g"]["state"])
    grids = sorted(p.name for p in (straight / "samples").iterdir())
    assert sorted(p.name for p in (crashed / "samples").iterdir()) == grids
    for grid in grids:
        assert (crashed / "samples" / grid).read_bytes() == (straight / "samples" / grid).read_bytes(), grid

    def rows(run: Path) -> list[dict]:
        return [{k: v for k, v in r.items() if k not in VOLATILE} for r in metric_rows(run)]

    assert rows(crashed) == rows(straight)
    check_metrics(crashed)
    leftovers = [p for d in (crashed, crashed / "checkpoints", crashed / "samples") for p in d.iterdir()
                 if p.name.startswith(".") and p.name != ".lock"]
    assert not leftovers, leftovers  # temporary files of killed writers were removed
