import numpy as np
import pytest
from PIL import Image

import ganforge

from .helpers import assert_one_line_error, run_cli, tiny_config


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["train", "--dataset", "nope"], "unknown dataset 'nope'"),
        (["train", "--dataset", "folder"], "--dataset folder needs --data-dir"),
        (["train", "--dataset", "mnist", "--data-dir", "/nonexistent/dir"], "--data-dir: /nonexistent/dir does not exist"),
        (["train", "--bogus"], "No such option '--bogus'"),
        (["train", "--steps", "abc"], "'abc' is not a valid integer"),
        (["train", "--model", "stylegan"], "'stylegan' is not one of"),
        (["train", "--classes", "1,x"], "classes must be a list of int"),
        (["train", "--mode-seeking", "-1"], "--mode-seeking must be non-negative, got -1.0"),
        (["train", "--mbstd", "-4"], "--mbstd must be non-negative, got -4"),
        (["train", "--mbstd", "1"], "--mbstd 1: a group of one image has no spread"),
        (["train", "--mismatch", "2"], "--mismatch must be in [0, 1], got 2.0"),
        (["train", "--pack", "0"], "--pack must be at least 1, got 0"),
        (["train", "--pack", "5"], "--pack 5: D scores packs of 5 images, so --batch-size must be a multiple"),
        (["train", "--pack", "2", "--conditional"], "--pack 2: a packed D scores several images at once and takes no "
                                                     "labels; drop --conditional or --pack"),
        (["train", "--clusters", "1"], "--clusters 1: one cluster tells G and D nothing; use 0 (off) or 2 or more"),
        (["train", "--clusters", "-3"], "--clusters must be non-negative, got -3"),
        (["train", "--batch-size", "1"], "--batch-size must be at least 2 (BatchNorm and the batch statistics"),
        (["train", "--resume", "/nonexistent/run"], "no such run directory"),
        (["sample", "/nonexistent/run"], "no such run directory"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, args, text):
    assert_one_line_error(*run_cli(capsys, *args)[::2], text)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    return {
        "uncond": ganforge.train(tiny_config(tmp / "u", steps=2), progress=False).path,
        "cond": ganforge.train(tiny_config(tmp / "c", steps=2, conditional=True), progress=False).path,
    }


def test_train_from_the_command_line_and_resume(capsys, tmp_path):
    out = tmp_path / "r"
    args = ["train", "--out", str(out), "--steps", "2", "--ngf", "4", "--ndf", "4", "--no-progress", "--device", "cpu"]
    code, _, err = run_cli(capsys, *args)
    assert code == 0 and f"run {out}" in err
    code, _, err = run_cli(capsys, "train", "--resume", str(out), "--steps", "3", "--no-progress")
    assert code == 0 and "at step 3" in err
    code, _, err = run_cli(capsys, "train", "--resume", str(out), "--ngf", "8")
    assert_one_line_error(code, err, "cannot change --ngf is 4 in the run, you gave 8")


def test_train_reads_a_config_file(capsys, tmp_path):
    cfg = tiny_config(tmp_path, steps=1)
    cfg.save(tmp_path / "c.yaml")
    code, _, _ = run_cli(capsys, "train", "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "x"),
                         "--no-progress")
    assert code == 0 and ganforge.run.Run.open(tmp_path / "x").config.ngf == 8


def test_sample_grid_folder_and_npz(capsys, tmp_path, trained):
    run = str(trained["uncond"])
    assert run_cli(capsys, "sample", run, "--n", "6", "--out", str(tmp_path / "g.png"))[0] == 0
    assert Image.open(tmp_path / "g.png").size[0] > 32
    z = np.load(tmp_path / "g.latents.npz")["z"]
    assert z.shape == (6, 16)
    assert run_cli(capsys, "sample", run, "--n", "3", "--out", str(tmp_path / "each") + "/")[0] == 0
    assert sorted(p.name for p in (tmp_path / "each").iterdir()) == ["00000.png", "00001.png", "00002.png"]
    assert run_cli(capsys, "sample", run, "--n", "5", "--out", str(tmp_path / "s.npz"), "--seed", "1")[0] == 0
    d = np.load(tmp_path / "s.npz")
    assert d["images"].shape == (5, 8, 8, 1) and d["images"].dtype == np.uint8 and d["z"].shape == (5, 16)
    assert "labels" not in d
    code, _, err = run_cli(capsys, "sample", run, "--label", "3")
    assert_one_line_error(code, err, "generator is unconditional")
    code, _, err = run_cli(capsys, "sample", run, "--out", str(tmp_path / "x.jpg"))
    assert_one_line_error(code, err, "must end in .png")


def test_sample_conditional_labels_and_checkpoint(capsys, tmp_path, trained):
    run = str(trained["cond"])
    assert run_cli(capsys, "sample", run, "--n", "4", "--label", "7", "--out", str(tmp_path / "s.npz"))[0] == 0
    assert np.load(tmp_path / "s.npz")["labels"].tolist() == [7, 7, 7, 7]
    assert run_cli(capsys, "sample", run, "--n", "4", "--labels", "1,2", "--out", str(tmp_path / "t.npz"),
                   "--checkpoint", "2")[0] == 0
    assert np.load(tmp_path / "t.npz")["labels"].tolist() == [1, 2, 1, 2]
    code, _, err = run_cli(capsys, "sample", run, "--label", "12")
    assert_one_line_error(code, err, "class 12 is out of range")
    code, _, err = run_cli(capsys, "sample", run, "--checkpoint", "999")
    assert_one_line_error(code, err, "--checkpoint")


def test_same_seed_same_samples(capsys, tmp_path, trained):
    run = str(trained["uncond"])
    for name in ("a", "b"):
        run_cli(capsys, "sample", run, "--n", "4", "--seed", "5", "--out", str(tmp_path / f"{name}.npz"))
    assert np.array_equal(np.load(tmp_path / "a.npz")["images"], np.load(tmp_path / "b.npz")["images"])


@pytest.mark.slow
def test_python_m_ganforge_help():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "ganforge", "train", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--label-smoothing" in done.stdout and "--time-limit" in done.stdout


@pytest.mark.parametrize("args", [["--dataset", "folder", "--data-dir", "/nonexistent/dir"],
                                  ["--background", "purple", "--dataset", "mnist", "--data-dir", "/nonexistent"],
                                  ["--eval-metrics", "fd"]])
def test_a_run_that_cannot_start_leaves_no_directory(capsys, tmp_path, args):
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--out", str(out), "--steps", "1", "--no-progress", *args)
    assert_one_line_error(code, err, "")
    assert not out.exists()  # so the same command, corrected, starts the run


def test_evaluation_results_line_up_whatever_the_longest_name():
    from ganforge.cli import format_result

    result = {"features_detail": "classifier", "n": 26000, "checkpoint": "generator.safetensors", "modes": 1000,
              "modes_kl": 0.25, "classes_expected": 1000, "fid": 3.0, "fid_std": 0.1}
    rows = format_result(result).splitlines()[2:]
    assert [r.split()[0] for r in rows] == ["modes", "modes_kl", "classes_expected", "fid"]
    assert len({r.index(r.split()[1]) for r in rows}) == 1  # every value starts in one column
    assert rows[2].split()[1] == "1000" and rows[3].endswith("3.0000 ± 0.1000")
