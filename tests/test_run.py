"""The run object: what a run is (its kind, rows, best step, data) is decided in one place and read everywhere."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import ganforge
from ganforge import Config
from ganforge.errors import RunError
from ganforge.generator_file import generator_metadata
from ganforge.report import render_report
from ganforge.run import Run

from .helpers import assert_one_line_error, run_cli, tiny_config, tiny_data


@pytest.mark.parametrize(("options", "kind"), [
    ({"conditional": True}, "conditional"),
    ({"label_assist": True}, "label-assisted"),
    ({"clusters": 4}, "self-conditioned"),
    ({}, "unconditional"),
    # Packing gives both assists way: a packed D scores several images under no one label.
    ({"preset": "fast", "pack": 2}, "unconditional"),
])
def test_the_kind_is_decided_once_and_read_everywhere(tmp_path, options, kind):
    run = ganforge.train(tiny_config(tmp_path, steps=2, **options), data=tiny_data(n=48), progress=False)
    assert run.kind == kind and Run.open(run.path).kind == kind
    assert Run.open(run.path).derived.get("clusters") == (4 if kind == "self-conditioned" else None)
    assert generator_metadata(run.generator)["ganforge_kind"] == kind
    assert run.load_generator(device="cpu").kind == kind
    assert run.load_generator("latest", device="cpu").kind == kind  # the checkpoint keeps it too
    shown = "self-conditioned (4 clusters)" if kind == "self-conditioned" else kind
    assert f"{run.config.model}, {shown}</dd>" in render_report(run)


def test_rows_survive_a_torn_line_and_truncate_to_a_step(tmp_path):
    run = Run.create(tiny_config(tmp_path))
    lines = [json.dumps({"step": s, "loss_d": 1.0}) for s in (2, 4)] + [json.dumps({"step": 4, "fid": 3.0}),
                                                                       "not json", '{"step": "x"}', '{"step": 6, "lo']
    run.metrics.write_text("\n".join(lines))
    assert [r["step"] for r in run.rows()] == [2, 4, 4]
    assert [r["step"] for r in run.training_rows()] == [2, 4] and run.evaluation_rows() == [{"step": 4, "fid": 3.0}]
    run.truncate_rows(2)
    assert run.metrics.read_text() == lines[0] + "\n"
    run.append_row({"step": 3, "loss_d": 0.5})
    assert [r["step"] for r in run.rows()] == [2, 3]


@pytest.mark.parametrize(("metric", "values", "best"), [
    ("fid", [5.0, 3.0, 3.0, 4.0], (4, 3.0)),  # lower is better; the first of equals
    ("pr", [0.2, 0.5, float("nan"), 0.4], (4, 0.5)),  # recall: higher is better; non-finite never wins
])
def test_the_best_step_follows_the_metric_direction(tmp_path, metric, values, best):
    run = Run.create(tiny_config(tmp_path, eval_metrics=[metric]))
    key = {"fid": "fid", "pr": "recall"}[metric]
    run.metrics.write_text("".join(json.dumps({"step": 2 * (i + 1), key: v}) + "\n" for i, v in enumerate(values)))
    assert run.best() == best
    assert run.best_step() is None  # no checkpoints/best.pt: the run keeps no best
    run.best_checkpoint.write_bytes(b"")
    assert run.best_step() == best[0]


def test_the_dataset_of_each_purpose(tmp_path):
    images = np.random.default_rng(0).integers(0, 255, (40, 8, 8, 3), dtype=np.uint8)
    path = tmp_path / "set.npz"
    np.savez(path, images=images, labels=np.arange(40) % 4)
    run = Run.create(Config(dataset="npz", data_dir=str(path), classes=[1, 2], max_images=20, channels=1,
                            out=str(tmp_path / "run")))
    train, reference, probe = (run.dataset("train", p) for p in ("train", "reference", "probe"))
    assert set(train.present_classes()) == {1, 2} and len(train) == 10  # 20 evenly spaced images, 2 classes
    assert set(reference.present_classes()) == {1, 2} and len(reference) == 20  # every image of its classes
    assert probe.present_classes() == [0, 1, 2, 3] and len(probe) == 40  # every image, every class
    assert {d.channels for d in (train, reference, probe)} == {1}  # the run's --channels, whatever the purpose


def test_a_run_is_resumed_as_it_trained(tmp_path):
    run = ganforge.train(tiny_config(tmp_path, steps=3), progress=False)
    with pytest.raises(RunError, match="--ngf: checkpoint 8, config 12"):
        ganforge.train(run.config.replace(ngf=12, steps=6), resume=run.path, progress=False)
    assert Run.open(run.path).config.ngf == 8  # a refused resume leaves config.yaml as it was


@pytest.mark.slow
def test_resume_of_a_read_only_run_is_one_line(tmp_path, capsys):
    run = ganforge.train(tiny_config(tmp_path, steps=2), progress=False)
    args = ["train", "--resume", str(run.path), "--steps", "4", "--no-progress"]
    os.chmod(run.path, 0o555)
    try:
        if os.geteuid() != 0:
            code, _, err = run_cli(capsys, *args)
        elif shutil.which("setpriv"):  # root writes anywhere: run it without the capability that lets it
            done = subprocess.run(["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--", sys.executable,
                                   "-m", "ganforge", *args], capture_output=True, text=True, timeout=300)
            code, err = done.returncode, done.stderr
        else:
            pytest.skip("running as root without setpriv: every directory is writable")
    finally:
        os.chmod(run.path, 0o755)
    assert_one_line_error(code, err, f"{run.path}: cannot write there", "copy the run somewhere you can write")
