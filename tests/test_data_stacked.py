"""Stacked MNIST: the fixed draw, its labels, 28 or 32 px, the cache key, the errors, and the real files."""

import json

import numpy as np
import pytest

from ganforge.cli import main
from ganforge.data import load_dataset
from ganforge.data.prepare import prepared_root
from ganforge.data.stacked import DRAWS
from ganforge.errors import ConfigError

from .helpers import SHARED_DATA, write_idx_set


@pytest.fixture(autouse=True)
def _cache(monkeypatch, tmp_path):
    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path / "cache"))


@pytest.fixture
def digits(tmp_path):
    """Tiny MNIST-style files: 12 train and 10 test digits of random pixels (each one unique)."""
    train = write_idx_set(tmp_path / "m", n=12, seed=0)
    test = write_idx_set(tmp_path / "m", n=10, seed=1, split="test")
    return tmp_path / "m", train, test


def _which(channel: np.ndarray, images: np.ndarray) -> int:
    """The index of the source digit a channel is a copy of."""
    (hit,) = np.flatnonzero((images == channel).all(axis=(1, 2)))
    return int(hit)


@pytest.mark.parametrize("split", ["train", "test"])
def test_each_channel_is_a_digit_and_the_label_spells_them(digits, split):
    data_dir, train, test = digits
    images, labels = train if split == "train" else test
    data = load_dataset("stacked-mnist", data_dir, split, max_images=40, cache=False)
    assert data.images.shape == (40, 3, 28, 28) and data.images.dtype == np.uint8
    assert data.num_classes == 1000 and data.class_names[305] == "305" and data.name == "stacked-mnist"
    for img, label in zip(data.images, data.labels, strict=True):
        r, g, b = (int(labels[_which(img[c], images)]) for c in range(3))
        assert label == 100 * r + 10 * g + b


def test_the_draw_is_fixed_whatever_max_images_keeps(digits):
    data_dir = digits[0]
    few = load_dataset("stacked-mnist", data_dir, max_images=5, cache=False)
    more = load_dataset("stacked-mnist", data_dir, max_images=9, cache=False)
    # Both keep evenly spaced images of the same 128,000-image draw: rows 0, 32000, 64000, 95999, 127999.
    assert np.array_equal(few.images, more.images[[0, 2, 4, 6, 8]])
    assert np.array_equal(few.labels, more.labels[[0, 2, 4, 6, 8]])
    assert np.array_equal(few.images, load_dataset("stacked-mnist", data_dir, max_images=5, cache=False).images)
    other = load_dataset("stacked-mnist", data_dir, "test", max_images=5, cache=False)
    assert not np.array_equal(few.labels, other.labels)  # the test split is its own draw


def test_32_px_zero_pads_and_never_resizes(digits):
    data_dir = digits[0]
    small = load_dataset("stacked-mnist", data_dir, image_size=28, max_images=6, cache=False)
    padded = load_dataset("stacked-mnist", data_dir, image_size=32, max_images=6, channels=3, cache=False)
    assert padded.images.shape == (6, 3, 32, 32)
    assert np.array_equal(padded.images[:, :, 2:30, 2:30], small.images)
    border = padded.images.copy()
    border[:, :, 2:30, 2:30] = 0
    assert not border.any()


def test_prepared_once_keyed_by_the_draw(digits):
    data_dir = digits[0]
    first = load_dataset("stacked-mnist", data_dir, max_images=20)
    again = load_dataset("stacked-mnist", data_dir, max_images=20)
    assert isinstance(again.images, np.memmap) and np.array_equal(first.images, again.images)
    (entry,) = [p for p in prepared_root().iterdir() if not p.name.startswith(".")]
    params = json.loads((entry / "manifest.json").read_text())["params"]
    assert params["recipe"] == {"draws": DRAWS, "seeds": {"train": 0, "test": 1}}
    assert params["source"] == "stacked-mnist" and again.class_names[999] == "999"


@pytest.mark.parametrize(("options", "message"), [
    ({"image_size": 64}, "--image-size: stacked-mnist is 28 or 32 px (32 zero-pads), not 64"),
    ({"image_size": 30}, "--image-size: stacked-mnist is 28 or 32 px (32 zero-pads), not 30"),
    ({"channels": 1}, "--channels 1: stacked-mnist is one digit per RGB channel"),
])
def test_bad_options_are_refused_before_reading_anything(options, message):
    with pytest.raises(ConfigError) as e:  # no --data-dir: refused before any download is tried
        load_dataset("stacked-mnist", **options)
    assert message in str(e.value)


@pytest.mark.parametrize("args", [
    ["datasets", "prepare", "stacked-mnist", "--image-size", "64", "--no-progress"],
    ["train", "--dataset", "stacked-mnist", "--image-size", "64", "--steps", "1", "--no-progress"],
])
def test_bad_size_via_the_cli_exits_2_in_one_line(args, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err == "ganforge: error: --image-size: stacked-mnist is 28 or 32 px (32 zero-pads), not 64"


def test_real_stacked_mnist():
    mnist = SHARED_DATA / "mnist"
    if not (mnist / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real MNIST not found at {mnist} (the repository's ../shared/data/mnist)")
    test = load_dataset("stacked-mnist", mnist, "test")
    assert test.images.shape == (26000, 3, 28, 28)
    counts = np.bincount(test.labels, minlength=1000)
    assert counts.min() >= 5 and counts.max() <= 60  # every mode present, ~26 each
    digits = load_dataset("mnist", mnist, "test", cache=False)
    first = [digits.labels[_which(test.images[0, c], digits.images[:, 0])] for c in range(3)]
    assert test.class_names[test.labels[0]] == "".join(map(str, first))
    train = load_dataset("stacked-mnist", mnist, max_images=1000)
    assert train.images.shape == (1000, 3, 28, 28) and len(np.unique(train.labels)) > 600
