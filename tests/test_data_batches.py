"""Batchers: the device-resident and the streaming one serve the same seeded, resumable, shardable stream."""

import gc

import numpy as np
import pytest
import torch

from ganforge.data import DeviceBatcher, ImageData, StreamingBatcher, make_batcher
from ganforge.data import batches as batches_mod
from ganforge.errors import ConfigError, DataError

KINDS = [DeviceBatcher, StreamingBatcher]


def make_data(tmp_path=None, n=50, labels=True):
    images = np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones((1, 1, 2, 2), np.uint8)  # image i is all i
    if tmp_path is not None:  # a read-only memmap, as the prepare cache hands out
        np.save(tmp_path / "images.npy", images)
        images = np.load(tmp_path / "images.npy", mmap_mode="r")
    return ImageData(images, np.arange(n, dtype=np.int64) % 7 if labels else None, "toy")


def ids(x):
    """Image ids back from a float batch (image i holds the value i everywhere)."""
    return ((x[:, 0, 0, 0] + 1) * 127.5).round().long().tolist()


def stream(batcher, k):
    out = []
    for _ in range(k):
        x, y = batcher.next()
        out.append((ids(x), None if y is None else y.tolist()))
    return out


def test_both_batchers_serve_the_same_stream(tmp_path):
    data = make_data(tmp_path)
    dev, st = DeviceBatcher(data, 8, torch.device("cpu"), seed=3), StreamingBatcher(data, 8, "cpu", seed=3)
    a, b = stream(dev, 20), stream(st, 20)  # 6 batches per epoch: crosses three epoch boundaries
    assert a == b
    epoch0 = [i for batch, _ in a[:6] for i in batch]
    assert len(set(epoch0)) == 48 and a[6][0] != a[0][0]  # each epoch a new permutation, no repeats
    assert all(y == [i % 7 for i in x] for x, y in a)
    st.close()


@pytest.mark.parametrize("kind", KINDS)
def test_values_scaled_to_unit_range(kind):
    images = np.array([0, 255], np.uint8)[:, None, None, None].repeat(2, 0)
    x, y = kind(ImageData(images, None, "t"), 4, torch.device("cpu")).next()
    assert x.dtype == torch.float32 and y is None
    assert sorted(x.flatten().tolist()) == [-1.0, -1.0, 1.0, 1.0]


@pytest.mark.parametrize("kind", KINDS)
def test_resume_continues_the_exact_stream(tmp_path, kind):
    data = make_data(tmp_path)
    reference = stream(kind(data, 8, torch.device("cpu"), seed=5), 15)
    first = kind(data, 8, torch.device("cpu"), seed=5)
    stream(first, 9)
    state = first.state_dict()
    assert state == {"epoch": 1, "position": 3} and abs(first.epoch_float - 1.5) < 1e-9
    resumed = kind(data, 8, torch.device("cpu"), seed=5)
    resumed.load_state_dict(state)
    assert stream(resumed, 6) == reference[9:]
    first.load_state_dict({"epoch": 0, "position": 2})  # rewinding a running batcher works too
    assert stream(first, 2) == reference[2:4]


@pytest.mark.parametrize("kind", KINDS)
def test_ranks_take_disjoint_shares_of_one_permutation(kind):
    data = make_data(n=50)
    full = [i for batch, _ in stream(kind(data, 8, torch.device("cpu"), seed=1), 6) for i in batch]
    r0, r1 = (stream(kind(data, 4, torch.device("cpu"), seed=1, rank=r, world_size=2), 6) for r in (0, 1))
    ids0, ids1 = [i for b, _ in r0 for i in b], [i for b, _ in r1 for i in b]
    assert not set(ids0) & set(ids1) and sorted(ids0 + ids1) == sorted(full)
    with pytest.raises(ConfigError, match="rank 2 is outside world size 2"):
        kind(data, 4, torch.device("cpu"), rank=2, world_size=2)


@pytest.mark.parametrize("kind", KINDS)
def test_too_few_images_for_a_batch(kind):
    with pytest.raises(DataError, match="10 images are fewer than one batch of 16; lower --batch-size"):
        kind(make_data(n=10), 16, torch.device("cpu"))


def test_make_batcher_picks_by_size(tmp_path, monkeypatch):
    mapped, in_memory = make_data(tmp_path), make_data()
    assert isinstance(make_batcher(in_memory, 8, "cpu"), DeviceBatcher)
    assert isinstance(make_batcher(mapped, 8, "cpu"), DeviceBatcher)  # fits: copied into memory
    monkeypatch.setattr(batches_mod, "device_budget", lambda device: 100)  # 200 bytes do not fit
    assert isinstance(make_batcher(mapped, 8, "cpu"), StreamingBatcher)
    assert isinstance(make_batcher(mapped, 8, "cpu", mode="device"), DeviceBatcher)
    assert isinstance(make_batcher(in_memory, 8, "cpu", mode="stream"), StreamingBatcher)
    with pytest.raises(ConfigError, match="--batches: 'disk' is not one of"):
        make_batcher(in_memory, 8, "cpu", mode="disk")


def test_prefetch_thread_stops_when_closed_or_dropped():
    b = StreamingBatcher(make_data(), 8, "cpu")
    b.next()
    thread = b._worker.thread
    assert thread.is_alive()
    b.close()
    assert not thread.is_alive()
    b.next()  # restarts lazily
    thread = b._worker.thread
    del b
    gc.collect()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_errors_in_the_prefetch_thread_reach_the_caller(monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk went away")

    monkeypatch.setattr(batches_mod.np, "take", broken)
    b = StreamingBatcher(make_data(), 8, "cpu")
    with pytest.raises(OSError, match="disk went away"):
        b.next()


@pytest.mark.gpu
def test_streaming_to_cuda_matches_device(tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    data = make_data(tmp_path, n=500)
    dev = DeviceBatcher(data, 32, torch.device("cuda"), seed=2)
    st = StreamingBatcher(data, 32, torch.device("cuda"), seed=2)
    for _ in range(40):  # several epochs: every buffer is reused many times
        (xd, yd), (xs, ys) = dev.next(), st.next()
        assert xs.is_cuda and torch.equal(xd, xs) and torch.equal(yd, ys)
    st.close()
