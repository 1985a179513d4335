"""Trust under faults: kill -9 at any moment, a full disk, two processes on one run or cache, hostile files"""

import json
import os
import re
import resource
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

import ganforge
from ganforge import RunError
from ganforge.checkpoint import load_checkpoint
from ganforge.cli import main
from ganforge.run import Run

from .crash_harness import (
    RESNET_OPTIONS,
    SRC,
    Kill,
    compare_runs,
    crashed_run,
    kill_plan,
    straight_run,
    write_dataset,
)
from .helpers import SUMMARY, assert_one_line_error, tiny_config

TINY = ["--ngf", "8", "--ndf", "8", "--z-dim", "16", "--batch-size", "16", "--device", "cpu", "--no-progress"]


def ganforge_process(args, cache, file_size_limit=None, **kwargs):
    """``python -m ganforge ARGS`` in a child process; with ``file_size_limit`` no file it writes may grow
    past that many bytes (RLIMIT_FSIZE, with SIGXFSZ ignored so the write fails with EFBIG, as on a full
    disk)."""
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    env = {**os.environ, "PYTHONPATH": str(SRC), "GANFORGE_DATA": str(cache), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "ganforge", *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=limit if file_size_limit else None, **kwargs)


def finish(proc, timeout=300):
    err = proc.communicate(timeout=timeout)[1]
    return proc.returncode, err


def assert_last_line_error(code, err, *fragments):
    """A CLI child's stderr also holds its log lines; the error is the last line, alone, with no traceback."""
    assert code == 2 and "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("ganforge: error:"), err
    for fragment in fragments:
        assert fragment in last, last


# -- kill -9 -------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_kill_9_at_random_moments_then_resume_is_bit_exact(tmp_path):
    """Seven kills: one before config.yaml exists, one inside dataset preparation, one inside a checkpoint
    write, one between a checkpoint and latest.pt, one at a seeded random moment of the loop, and two more of
    kinds, moments and counts drawn from the seed."""
    data = write_dataset(tmp_path / "data.npz")
    reference = straight_run(tmp_path, data, steps=80)  # alongside the crashed one: two cores
    report = crashed_run(tmp_path, data, steps=80, kills=kill_plan(7, seed=0))
    code, err = finish(reference)
    assert code == 0, err
    SUMMARY["kill -9"] = (f"{len(report.killed)} kills survived ({', '.join(report.killed)}) in "
                          f"{report.launches} launches, generator.safetensors bit-equal to an unkilled run")
    kinds = {kill.split("+")[0].split(":")[0] for kill in report.killed}
    assert kinds == {"start", "prepare", "checkpoint-write", "checkpoint-link", "training"}, report
    compare_runs(tmp_path / "crashed", tmp_path / "straight")


@pytest.mark.slow
def test_kill_9_of_a_resnet_run_with_schedules_then_resume_is_bit_exact(tmp_path):
    """The ResNet family under R3GAN's schedules: the scheduled values come back with the step after a kill."""
    data = write_dataset(tmp_path / "data.npz")
    reference = straight_run(tmp_path, data, steps=40, options=RESNET_OPTIONS)
    report = crashed_run(tmp_path, data, steps=40, kills=[Kill("checkpoint-link"), Kill("training", 0.3),
                                                          Kill("training", 0.6)], options=RESNET_OPTIONS)
    code, err = finish(reference)
    assert code == 0, err
    assert len(report.killed) >= 2, report
    compare_runs(tmp_path / "crashed", tmp_path / "straight")


def test_resume_drops_a_row_torn_by_a_kill_and_rows_past_the_checkpoint(tmp_path):
    run = ganforge.train(tiny_config(tmp_path, steps=4, log_every=1, checkpoint_every=2), progress=False)
    metrics = run.path / "metrics.jsonl"
    with metrics.open("a") as f:  # what a kill in the middle of a row leaves
        f.write('{"step": 5, "epoch": 0.1, "loss_d": 0.')
    ganforge.train(Run.open(run.path).config.replace(steps=6), resume=run.path, progress=False)
    steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_a_run_killed_before_its_first_checkpoint_starts_again(tmp_path, capsys):
    """config.yaml is there, latest.pt is not: --resume trains it from step 0, as a fresh run would."""
    cfg = tiny_config(tmp_path, steps=4, log_every=1, checkpoint_every=100)
    run = Run.create(cfg)
    run.metrics.write_text('{"step": 1, "loss_d": 1.0}\n{"step": 2, "lo')  # rows of the attempt that died
    assert main(["train", "--resume", str(run.path), "--no-progress"]) == 0
    assert "has no checkpoint yet; training it from step 0" in capsys.readouterr().err
    straight = ganforge.train(tiny_config(tmp_path / "b", steps=4, log_every=1, checkpoint_every=100),
                              progress=False)
    assert run.generator.read_bytes() == straight.path.joinpath("generator.safetensors").read_bytes()
    assert [json.loads(r)["step"] for r in run.metrics.read_text().splitlines()] == [1, 2, 3, 4]


def test_a_run_killed_before_config_yaml_is_started_again_by_the_same_command(tmp_path, capsys):
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)  # what a kill between mkdir and writing config.yaml leaves
    (out / ".config.123.tmp.yaml").write_text("dataset: dig")
    code = main(["train", "--resume", str(out)])
    assert_one_line_error(code, capsys.readouterr().err, "no config.yaml); if a training was stopped before "
                                                         f"it wrote one, start it again with --out {out}")
    assert main(["train", "--out", str(out), "--steps", "2", *TINY]) == 0
    assert load_checkpoint(out / "checkpoints" / "latest.pt")["step"] == 2
    assert not (out / ".config.123.tmp.yaml").exists()  # the dead attempt's temporary file is gone


# -- two processes at once -----------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_run_being_trained_is_locked(tmp_path, capsys):
    out = tmp_path / "run"
    trainer = ganforge_process(["train", "--out", out, "--steps", 100000, "--log-every", 1, *TINY], tmp_path)
    try:
        for line in trainer.stderr:
            if " from step " in line:
                break
        expected = f"{out} is being trained by process {trainer.pid} (since "
        code = main(["train", "--resume", str(out), "--no-progress"])
        assert_one_line_error(code, capsys.readouterr().err, expected)
        code = main(["train", "--out", str(out), "--steps", "2", *TINY])
        assert_one_line_error(code, capsys.readouterr().err, expected)
    finally:
        trainer.kill()
        trainer.communicate()
    # kill -9 left the lock file, but not the lock: the run resumes at once
    assert main(["train", "--resume", str(out), "--steps", "1", "--no-progress"]) == 0


@pytest.mark.slow
def test_two_trainings_started_on_one_out_at_once(tmp_path):
    """Whichever wins writes the run; the other is refused with the reason, never a mixed config.yaml."""
    out = tmp_path / "run"
    procs = [ganforge_process(["train", "--out", out, "--steps", 2, "--seed", seed, *TINY], tmp_path)
             for seed in (1, 2)]
    results = [finish(p) for p in procs]
    assert sorted(code for code, _ in results) == [0, 2], results
    code, err = next(r for r in results if r[0] == 2)
    assert_last_line_error(code, err, str(out))
    assert "is being trained by process" in err or "already exists; continue it with --resume" in err
    winner = procs[[c for c, _ in results].index(0)]
    seed = Run.open(out).config.seed
    assert load_checkpoint(out / "checkpoints" / "latest.pt")["config"]["train"]["seed"] == seed
    assert winner.args[winner.args.index("--seed") + 1] == str(seed)


PREPARE = """
import logging, sys, time
from pathlib import Path
import ganforge.data.registry as registry

logging.basicConfig(level=logging.INFO)

real = registry.load_npz
def slow(path):
    print("built", flush=True)
    time.sleep(1.0)
    return real(path)
registry.load_npz = slow
ready = Path(sys.argv[2])
ready.joinpath(sys.argv[3]).touch()
while len(list(ready.iterdir())) < 2:  # both processes ask for the dataset at the same moment
    time.sleep(0.01)
data = registry.load_dataset("npz", sys.argv[1])
print(int(data.images.astype("int64").sum()), flush=True)
"""


@pytest.mark.slow
def test_two_concurrent_prepares_leave_one_valid_cache(tmp_path):
    data = write_dataset(tmp_path / "data.npz")
    (tmp_path / "ready").mkdir()
    env = {**os.environ, "PYTHONPATH": str(SRC), "GANFORGE_DATA": str(tmp_path / "cache")}
    procs = [subprocess.Popen([sys.executable, "-c", PREPARE, data, tmp_path / "ready", name], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name in "ab"]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    printed = [out.split() for out, _ in outs]
    assert sum(lines.count("built") for lines in printed) == 1  # the second one waited and reused it
    assert printed[0][-1] == printed[1][-1] == str(np.load(data)["images"].astype("int64").sum())
    cache = tmp_path / "cache" / "prepared"
    assert len([p for p in cache.iterdir() if not p.name.startswith(".")]) == 1
    assert not [p for p in cache.iterdir() if p.is_dir() and p.name.startswith(".")]
    # The waiter names the holder, or "another process" when it looked in the instant between the holder's
    # lock and its writing its pid into the lock file.
    assert re.search(r"waiting for (process \d+ \(since [^)]*\)|another process), which is preparing", "".join(e for _, e in outs))


# -- a full disk ---------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_full_disk_during_a_checkpoint_keeps_latest(tmp_path):
    run = ganforge.train(tiny_config(tmp_path, steps=4, checkpoint_every=2), progress=False).path
    latest = run / "checkpoints" / "latest.pt"
    before = latest.read_bytes()
    assert len(before) > 50_000  # and the other files stay under the limit
    proc = ganforge_process(["train", "--resume", run, "--steps", 8, "--sample-every", 100, "--no-progress"],
                            tmp_path / "cache", file_size_limit=50_000)
    code, err = finish(proc)
    assert_last_line_error(code, err, f"{run}/checkpoints/step-00000006.pt: cannot write it (File too large: "
                                      "the disk is full, or a quota or file-size limit is reached); nothing "
                                      f"was replaced: free some space, then continue with --resume {run}")
    assert latest.read_bytes() == before
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "latest.pt", "step-00000002.pt", "step-00000004.pt"]  # no temporary file left
    assert main(["train", "--resume", str(run), "--steps", "8", "--no-progress"]) == 0
    assert load_checkpoint(latest)["step"] == 8


@pytest.mark.slow
def test_full_disk_during_the_export_keeps_the_previous_generator(tmp_path):
    run = ganforge.train(tiny_config(tmp_path, steps=1, ngf=24), progress=False).path
    before = (run / "generator.safetensors").read_bytes()
    assert len(before) > 50_000  # and the sample grid (7 kB) and config.yaml stay under the limit
    proc = ganforge_process(["train", "--resume", run, "--no-progress"], tmp_path / "cache",
                            file_size_limit=50_000)
    code, err = finish(proc)  # nothing left to train: it writes the last grid, then exports
    assert_last_line_error(code, err, f"{run}/generator.safetensors: cannot write it (File too large",
                           "nothing was replaced: free some space, then export it again")
    assert (run / "generator.safetensors").read_bytes() == before
    assert not [p for p in run.iterdir() if p.name.startswith(".") and p.name != ".lock"]
    assert ganforge.load_generator(run, device="cpu").sample(2, seed=0).shape == (2, 1, 8, 8)


@pytest.mark.slow
def test_full_disk_during_a_prepare_keeps_the_other_caches(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("GANFORGE_DATA", str(cache))
    small = write_dataset(tmp_path / "small.npz", n=32)
    big = tmp_path / "big.npz"
    np.savez(big, images=np.zeros((400, 16, 16), np.uint8))  # 100 kB prepared
    assert main(["train", "--dataset", "npz", "--data-dir", str(small), "--out", str(tmp_path / "a"),
                 "--steps", "1", *TINY]) == 0
    [entry] = (cache / "prepared").glob("npz-*")
    stamp = (entry / "images.npy").stat().st_mtime_ns
    proc = ganforge_process(["train", "--dataset", "npz", "--data-dir", big, "--out", tmp_path / "b",
                             "--steps", 1, *TINY], cache, file_size_limit=50_000)
    code, err = finish(proc)
    assert_last_line_error(code, err, f"{cache}/prepared/npz-train-", ": cannot write it (File too large",
                           "free some space there, or set GANFORGE_DATA to a folder on a disk with room")
    assert [p for p in (cache / "prepared").iterdir() if p.is_dir()] == [entry]  # no half-built entry
    assert main(["train", "--resume", str(tmp_path / "a"), "--steps", "2", "--no-progress"]) == 0
    assert (entry / "images.npy").stat().st_mtime_ns == stamp  # reused as it was
    assert not (tmp_path / "b").exists()  # a run that could not start leaves no directory behind
    assert main(["train", "--dataset", "npz", "--data-dir", str(big), "--out", str(tmp_path / "b"),
                 "--steps", "1", *TINY]) == 0  # with room, the same command builds the cache and trains
    assert len([p for p in (cache / "prepared").iterdir() if p.is_dir()]) == 2


# -- untrusted files -----------------------------------------------------------------------------------------

class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_checkpoint_runs_no_code(tmp_path, capsys):
    run = ganforge.train(tiny_config(tmp_path, steps=2), progress=False).path
    marker, evil = tmp_path / "pwned", tmp_path / "evil.pt"
    torch.save({"generator": RunsCode(marker), "config": {}}, evil)
    with pytest.raises(RunError, match="evil.pt: corrupt or unreadable checkpoint"):
        load_checkpoint(evil)
    code = main(["sample", str(run), "--checkpoint", str(evil), "--out", str(tmp_path / "x.png")])
    assert_one_line_error(code, capsys.readouterr().err, f"{evil}: corrupt or unreadable checkpoint")
    evil.replace(run / "checkpoints" / "latest.pt")
    code = main(["train", "--resume", str(run), "--steps", "4", "--no-progress"])
    assert_one_line_error(code, capsys.readouterr().err, "latest.pt: corrupt or unreadable checkpoint")
    assert not marker.exists()
