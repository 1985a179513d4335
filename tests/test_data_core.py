import gzip
import struct

import numpy as np
import pytest
import torch

from ganforge import DataError, load_dataset
from ganforge.data import DeviceBatcher
from ganforge.data.idx import read_idx

from .helpers import tiny_data


def write_idx(path, array, gz=True):
    dtype_code = {np.uint8: 0x08}[array.dtype.type]
    header = bytes([0, 0, dtype_code, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    raw = header + array.tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def make_mnist_dir(root, n=20, labels_n=None):
    rng = np.random.default_rng(0)
    write_idx(root / "train-images-idx3-ubyte.gz", rng.integers(0, 255, (n, 28, 28), dtype=np.uint8))
    write_idx(root / "train-labels-idx1-ubyte.gz", (np.arange(labels_n or n) % 10).astype(np.uint8))
    return root


def test_digits_is_embedded_and_real():
    data = load_dataset("digits")
    assert data.images.shape[1:] == (1, 8, 8) and data.images.dtype == np.uint8
    assert data.num_classes == 10 and data.images.max() == 255
    test = load_dataset("digits", split="test")
    assert len(data) + len(test) == 1797


def test_idx_reader_round_trip(tmp_path):
    data = load_dataset("mnist", make_mnist_dir(tmp_path), "train")
    assert data.images.shape == (20, 1, 28, 28) and list(data.labels[:3]) == [0, 1, 2]
    resized = load_dataset("mnist", tmp_path, "train", image_size=32)
    assert resized.images.shape == (20, 1, 32, 32)


def test_idx_errors_are_clear(tmp_path):
    make_mnist_dir(tmp_path, n=20, labels_n=19)
    with pytest.raises(DataError, match="20 images but train-labels-idx1-ubyte.gz has 19 labels"):
        load_dataset("mnist", tmp_path)
    bad = tmp_path / "bad.gz"
    bad.write_bytes(b"\x1f\x8b" + b"garbage")
    with pytest.raises(DataError, match="bad.gz: not a valid gzip file"):
        read_idx(bad)
    magic = tmp_path / "magic"
    magic.write_bytes(b"\x01\x02\x03\x04" + bytes(10))
    with pytest.raises(DataError, match="bad magic number"):
        read_idx(magic)
    short = tmp_path / "short"
    write_idx(short, np.zeros((4, 3, 3), np.uint8), gz=False)
    short.write_bytes(short.read_bytes()[:-5])
    with pytest.raises(DataError, match="truncated"):
        read_idx(short)
    with pytest.raises(DataError, match="no t10k-images-idx3-ubyte.gz"):
        load_dataset("mnist", tmp_path, "test")


def test_unknown_dataset_and_missing_dir(tmp_path):
    with pytest.raises(DataError, match="unknown dataset 'nope'"):
        load_dataset("nope")
    with pytest.raises(DataError, match="needs --data-dir"):
        load_dataset("folder")
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("mnist", tmp_path / "absent")


def test_select_classes_keeps_ids_and_rejects_absent():
    data = tiny_data(30, classes=3)
    sub = data.select_classes([2])
    assert set(sub.labels.tolist()) == {2} and sub.num_classes == 3
    with pytest.raises(DataError, match="has no class 7"):
        data.select_classes([7])


def test_batcher_is_seeded_epoch_ordered_and_resumable():
    data = tiny_data(40)
    a = DeviceBatcher(data, 8, torch.device("cpu"), seed=1)
    first_epoch = [a.next()[1] for _ in range(a.batches_per_epoch)]
    assert sorted(torch.cat(first_epoch).tolist()) == sorted(data.labels.tolist())  # each image once per epoch
    x, _ = a.next()
    assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1
    state = a.state_dict()
    expected = [a.next()[0] for _ in range(3)]
    b = DeviceBatcher(data, 8, torch.device("cpu"), seed=1)
    b.load_state_dict(state)
    assert all(torch.equal(e, b.next()[0]) for e in expected)


def test_batcher_shards_disjointly():
    data = tiny_data(40)
    shards = [DeviceBatcher(data, 4, torch.device("cpu"), seed=0, rank=r, world_size=2) for r in range(2)]
    seen = [torch.cat([s.next()[0].flatten(1) for _ in range(s.batches_per_epoch)]) for s in shards]
    assert len(seen[0]) == len(seen[1]) == 20
    assert not any((seen[0][i] == seen[1]).all(1).any() for i in range(20))


def test_too_few_images_for_a_batch():
    with pytest.raises(DataError, match="lower --batch-size"):
        DeviceBatcher(tiny_data(10), 16, torch.device("cpu"))
