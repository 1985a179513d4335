import numpy as np
import pytest

from ganforge.files import atomic_path, atomic_write
from ganforge.images import float_to_pixels, pixels_to_float, to_uint8


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "a.json"
    atomic_write(target, "old")
    atomic_write(target, b"new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_failed_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "stats.npz"
    atomic_write(target, b"previous")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        assert tmp.suffix == ".npz" and tmp.parent == tmp_path  # np.savez keeps a name that ends in .npz
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["stats.npz"]


def test_pixel_conversions_round_trip():
    import torch

    pixels = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    x = pixels_to_float(pixels)
    assert x.dtype == torch.float32 and x.min() == -1 and x.max() == 1
    assert torch.equal(float_to_pixels(x), pixels)
    assert torch.equal(float_to_pixels(torch.tensor([-3.0, 3.0])), torch.tensor([0, 255], dtype=torch.uint8))
    assert np.array_equal(to_uint8(x)[0, :, :, 0], pixels[0, 0].numpy())
