"""sample / interpolate / arithmetic / sweep on tiny trained runs: files, sizes, frame counts, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge import Config
from ganforge.latent import latents_for_seeds

from .helpers import expect_error, run_cli

TILE = 34  # 8×8 digits upscaled ×4 to 32 px, plus 2 px padding per tile
GIF_SIDE = 64  # 8×8 upscaled ×8


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    common = dict(dataset="digits", steps=4, batch_size=16, log_every=2, sample_every=100, checkpoint_every=100,
                  seed=0, device="cpu")
    uncond = ganforge.train(Config(out=str(root / "uncond"), model="dcgan", ngf=4, ndf=4, **common), progress=False)
    cond = ganforge.train(Config(out=str(root / "cond"), model="mlp", conditional=True, g_hidden=[16],
                                 d_hidden=[16], embed_dim=4, **common), progress=False)
    return {"uncond": str(uncond.path), "cond": str(cond.path)}




# -- sample: tiles can be pointed at by number -----------------------------------------------------

def test_sample_grid_tiles_are_numbered_by_their_seed(runs, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert run_cli(capsys, *[("sample"), runs["uncond"], "--n", "6", "--seed", "10", "--out", str(out)])[0] == 0
    with np.load(tmp_path / "grid.latents.npz") as f:
        seeds, z = f["seeds"], f["z"]
    assert seeds.tolist() == list(range(10, 16))
    g = ganforge.load_generator(runs["uncond"], device="cpu")
    assert torch.equal(torch.from_numpy(z), latents_for_seeds(seeds.tolist(), g.z_dim))
    # The .npz output holds the same images as the tiles: seed 12 is image 2 of --seed 10.
    assert run_cli(capsys, *["sample", runs["uncond"], "--n", "6", "--seed", "10", "--out", str(tmp_path / "s.npz")])[0] == 0
    with np.load(tmp_path / "s.npz") as f:
        images = f["images"]
    single = ganforge.images.to_uint8(g.sample(1, z=latents_for_seeds([12], g.z_dim)))
    assert np.array_equal(images[2], single[0])


# -- interpolate -----------------------------------------------------------------------------------

def test_interpolate_writes_a_gif_loop_with_the_frame_count(runs, tmp_path, capsys):
    out = tmp_path / "walk.gif"
    assert run_cli(capsys, *["interpolate", runs["uncond"], "--seeds", "3,17,42", "--frames", "9", "--out", str(out)])[0] == 0
    with Image.open(out) as im:
        assert im.n_frames == 9
        assert im.size == (GIF_SIDE, GIF_SIDE)
        assert im.info["loop"] == 0


def test_interpolate_writes_a_strip_and_z_files_work(runs, tmp_path, capsys):
    assert run_cli(capsys, *["sample", runs["uncond"], "--n", "4", "--out", str(tmp_path / "g.png")])[0] == 0
    out = tmp_path / "strip.png"
    args = ["interpolate", runs["uncond"], "--z", str(tmp_path / "g.latents.npz"), "--seeds", "1,3",
            "--frames", "7", "--method", "lerp", "--out", str(out)]
    assert run_cli(capsys, *args)[0] == 0
    with Image.open(out) as im:
        assert im.size == (7 * TILE + 2, TILE + 2)


def test_interpolate_morphs_between_classes(runs, tmp_path, capsys):
    out = tmp_path / "morph.gif"
    args = ["interpolate", runs["cond"], "--seeds", "5", "--labels", "0,3,7", "--frames", "6", "--out", str(out)]
    assert run_cli(capsys, *args)[0] == 0
    with Image.open(out) as im:
        assert im.n_frames == 6


# -- arithmetic ------------------------------------------------------------------------------------

def test_arithmetic_figure_and_result_latents(runs, tmp_path, capsys):
    out = tmp_path / "sum.png"
    args = ["arithmetic", runs["uncond"], "--minus", "4,5", "--plus", "1,2,3", "--plus", "6,7,8",
            "--variations", "4", "--out", str(out)]
    assert run_cli(capsys, *args)[0] == 0
    with np.load(tmp_path / "sum.latents.npz") as f:
        z = torch.from_numpy(f["z"])
    assert z.shape == (5, 100)
    seeds = lambda s: latents_for_seeds(s, 100).mean(0)  # noqa: E731
    assert torch.allclose(z[0], seeds([1, 2, 3]) - seeds([4, 5]) + seeds([6, 7, 8]), atol=1e-5)
    with Image.open(out) as im:
        # 4 rows (3 groups + result); left: sign + mean; a 16 px gap; right: 4 columns (max(3, 4)).
        assert im.size == ((2 * TILE + 2) + 16 + (4 * TILE + 2), 4 * TILE + 2)
        pixels = np.asarray(im.convert("L"))
    # Rows follow the command line: the first row's sign is a minus (no vertical bar above the centre),
    # the second a plus.
    centre = 2 + 16
    assert pixels[2 + 10, centre] == 0
    assert pixels[2 + TILE + 10, centre] == 255


def test_arithmetic_needs_a_group(runs, capsys):
    expect_error(capsys, ["arithmetic", runs["uncond"]], "--plus or --minus")


def test_arithmetic_on_a_conditional_run_needs_a_label(runs, tmp_path, capsys):
    expect_error(capsys, ["arithmetic", runs["cond"], "--plus", "1,2"], "--label", "conditional")
    out = tmp_path / "c.png"
    assert run_cli(capsys, *["arithmetic", runs["cond"], "--plus", "1,2", "--label", "3", "--out", str(out)])[0] == 0


# -- sweep -----------------------------------------------------------------------------------------

def test_sweep_is_one_row_per_seed_and_one_column_per_class(runs, tmp_path, capsys):
    out = tmp_path / "sweep.png"
    assert run_cli(capsys, *["sweep", runs["cond"], "--seeds", "1,2,3", "--out", str(out)])[0] == 0
    with Image.open(out) as im:
        assert im.size == (10 * TILE + 2, 3 * TILE + 2)
    assert run_cli(capsys, *["sweep", runs["cond"], "--seeds", "1", "--classes", "2,4", "--out", str(out)])[0] == 0
    with Image.open(out) as im:
        assert im.size == (2 * TILE + 2, TILE + 2)


# -- errors ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("seeds", ["", ",", "1,x", "1.5"])
def test_bad_seed_lists(runs, seeds, capsys):
    expect_error(capsys, ["interpolate", runs["uncond"], "--seeds", seeds], "--seeds")


def test_interpolate_needs_two_seeds(runs, capsys):
    expect_error(capsys, ["interpolate", runs["uncond"], "--seeds", "4"], "at least 2 seeds")


def test_sweep_refuses_an_unconditional_run(runs, capsys):
    expect_error(capsys, ["sweep", runs["uncond"], "--seeds", "1,2"], "unconditional", "--conditional")


def test_class_out_of_range(runs, capsys):
    expect_error(capsys, ["interpolate", runs["cond"], "--seeds", "1,2", "--label", "10"],
                 "class 10 is out of range", "0..9")
    expect_error(capsys, ["sweep", runs["cond"], "--seeds", "1", "--classes", "3,12"], "--classes", "class 12")


def test_label_options_misused(runs, capsys):
    expect_error(capsys, ["interpolate", runs["uncond"], "--seeds", "1,2", "--label", "1"], "unconditional")
    expect_error(capsys, ["interpolate", runs["cond"], "--seeds", "1,2", "--label", "1", "--labels", "2,3"],
                 "--label and --labels")


def test_not_a_run_directory(tmp_path, capsys):
    expect_error(capsys, ["interpolate", str(tmp_path), "--seeds", "1,2"], str(tmp_path), "not a ganforge run")
    expect_error(capsys, ["sweep", str(tmp_path / "missing"), "--seeds", "1"], "no such run directory")


def test_z_file_row_out_of_range(runs, tmp_path, capsys):
    np.savez(tmp_path / "z.npz", z=np.zeros((3, 100), np.float32))
    expect_error(capsys, ["interpolate", runs["uncond"], "--z", str(tmp_path / "z.npz"), "--seeds", "0,3"],
                 "no tile 3")


def test_wrong_output_suffix(runs, tmp_path, capsys):
    expect_error(capsys, ["interpolate", runs["uncond"], "--seeds", "1,2", "--out", str(tmp_path / "w.mp4")],
                 "--out", ".gif")
