"""Prepare once: the memmap cache (reuse, stale, corrupt, unwritable), downloads of named sets, the CLI."""

import gzip
import hashlib
import http.server
import json
import logging
import os
import threading
from functools import partial

import numpy as np
import pytest

from ganforge.cli import main
from ganforge.data import load_dataset
from ganforge.data import remote as remote_mod
from ganforge.data.npyfile import allocate, trim
from ganforge.data.prepare import prepared_root
from ganforge.download import RemoteFile
from ganforge.errors import DataError
from ganforge.run import Run

from .helpers import SHARED_DATA, idx_bytes, save_image, solid, write_idx_set


@pytest.fixture(autouse=True)
def _cache(monkeypatch, tmp_path):
    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path / "cache"))


def entries():
    return sorted(p for p in prepared_root().iterdir() if not p.name.startswith("."))


def test_prepared_once_then_memory_mapped(tmp_path):
    images, labels = write_idx_set(tmp_path / "m", n=20)
    first = load_dataset("mnist", tmp_path / "m")
    assert isinstance(first.images, np.memmap) and not first.images.flags.writeable
    assert np.array_equal(first.images[:, 0], images) and first.labels.tolist() == labels.tolist()
    [entry] = entries()
    stamp = (entry / "images.npy").stat().st_mtime_ns
    second = load_dataset("mnist", tmp_path / "m")
    assert (entry / "images.npy").stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert np.array_equal(second.images, first.images) and second.class_names == first.class_names
    load_dataset("mnist", tmp_path / "m", image_size=14)  # other options: another entry
    assert len(entries()) == 2
    leftovers = [p for p in prepared_root().iterdir() if p.name.startswith(".") and p.is_dir()]
    assert not leftovers  # no temporary folders left (the entries' lock files stay)


def test_changed_input_makes_the_entry_stale(tmp_path):
    write_idx_set(tmp_path, n=8, seed=1)
    load_dataset("mnist", tmp_path)
    images, _ = write_idx_set(tmp_path, n=8, seed=2)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    data = load_dataset("mnist", tmp_path)
    assert np.array_equal(data.images[:, 0], images) and len(entries()) == 1  # rebuilt in place


@pytest.mark.parametrize("damage", [
    lambda e: (e / "images.npy").write_bytes((e / "images.npy").read_bytes()[:1000]),
    lambda e: (e / "manifest.json").write_text("{not json"),
    lambda e: (e / "labels.npy").unlink(),
])
def test_corrupt_entry_is_rebuilt(tmp_path, damage, caplog):
    images, _ = write_idx_set(tmp_path, n=8)
    load_dataset("mnist", tmp_path)
    damage(entries()[0])
    with caplog.at_level(logging.INFO, logger="ganforge"):
        data = load_dataset("mnist", tmp_path)
    assert np.array_equal(data.images[:, 0], images) and "rebuilding" in caplog.text


def test_unwritable_cache_prepares_in_memory(tmp_path, monkeypatch, caplog):
    (tmp_path / "blocker").write_text("a file where the cache folder should be")
    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path / "blocker"))
    images, _ = write_idx_set(tmp_path / "m", n=8)
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        data = load_dataset("mnist", tmp_path / "m")
    assert np.array_equal(data.images[:, 0], images) and "cannot write the prepared cache" in caplog.text


def test_folder_skips_are_remembered_by_the_cache(tmp_path, caplog):
    save_image(tmp_path / "a.png", solid(10, 10, (1, 2, 3)))
    (tmp_path / "b.png").write_bytes(b"not a png")
    save_image(tmp_path / "c.png", solid(10, 10, (4, 5, 6)))
    first = load_dataset("folder", tmp_path, image_size=8)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        again = load_dataset("folder", tmp_path, image_size=8)
    assert len(first) == len(again) == 2 and again.images[1, :, 0, 0].tolist() == [4, 5, 6]
    assert "skipped 1 unreadable" in caplog.text  # warned again on reuse, not lost
    with pytest.raises(DataError, match=r"b\.png"):
        load_dataset("folder", tmp_path, image_size=8, strict=True)


def test_trim_rewrites_header_without_copying(tmp_path):
    arr = allocate(tmp_path / "x.npy", (5, 1, 2, 2))
    arr[:] = np.arange(20, dtype=np.uint8).reshape(5, 1, 2, 2)
    arr.flush()
    del arr
    out = trim(tmp_path / "x.npy", 3)
    assert out.shape == (3, 1, 2, 2) and out.ravel().tolist() == list(range(12))
    assert np.load(tmp_path / "x.npy").shape == (3, 1, 2, 2)


# -- downloads of named sets, from a local server ----------------------------------------------------
class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def mnist_server(tmp_path, monkeypatch):
    """Serve tiny gzipped IDX files and point the mnist remotes at them (official first, then the mirror)."""
    www = tmp_path / "www"
    images, labels = write_idx_set(www, n=10)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(www)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    files = {}
    for f in www.iterdir():
        md5 = hashlib.md5(f.read_bytes()).hexdigest()
        files[f.name] = RemoteFile(f.name, [f"{base}/gone/{f.name}", f"{base}/{f.name}"], md5=md5)
    monkeypatch.setitem(remote_mod.REMOTES, "mnist", files)
    yield images, labels, httpd
    httpd.shutdown()


def test_named_set_downloads_into_cache_then_works_offline(mnist_server):
    images, labels, httpd = mnist_server
    data = load_dataset("mnist")
    assert np.array_equal(data.images[:, 0], images) and data.labels.tolist() == labels.tolist()
    assert (remote_mod.download_dir("mnist") / "train-images-idx3-ubyte.gz").is_file()
    httpd.shutdown()
    assert np.array_equal(load_dataset("mnist", cache=False).images[:, 0], images)  # from the downloaded files


def test_download_checksum_mismatch_says_where_to_put_the_file(mnist_server, monkeypatch):
    name = "train-images-idx3-ubyte.gz"
    bad = RemoteFile(name, remote_mod.REMOTES["mnist"][name].urls, md5="0" * 32)
    monkeypatch.setitem(remote_mod.REMOTES, "mnist", {**remote_mod.REMOTES["mnist"], name: bad})
    with pytest.raises(DataError, match=f"could not download {name} .*checksum mismatch.*put it at .*mnist/{name}"):
        load_dataset("mnist")
    assert not (remote_mod.download_dir("mnist") / name).exists()


def test_offline_download_error_via_cli(monkeypatch, capsys):
    files = {n: RemoteFile(n, [f"http://127.0.0.1:9/{n}"], md5="0" * 32) for n in remote_mod.REMOTES["mnist"]}
    monkeypatch.setitem(remote_mod.REMOTES, "mnist", files)
    assert main(["datasets", "prepare", "mnist", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "could not download train-images-idx3-ubyte.gz" in err and "put it at" in err


# -- CLI ---------------------------------------------------------------------------------------------
def test_cli_prepare_then_list(tmp_path, capsys):
    write_idx_set(tmp_path / "m", n=12)
    assert main(["datasets", "prepare", "mnist", "--data-dir", str(tmp_path / "m"), "--image-size", "16",
                 "--channels", "3", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "mnist train: 12 images, 3×16×16, 10 classes, prepared in" in out
    manifest = json.loads((entries()[0] / "manifest.json").read_text())
    assert manifest["shape"] == [12, 3, 16, 16] and manifest["params"]["channels"] == 3
    assert main(["datasets", "list"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert set(rows) >= {"digits", "mnist", "fashion-mnist", "kmnist", "cifar10", "folder", "lsun", "npz"}
    assert "train 16px×3 (12)" in rows["mnist"] and rows["kmnist"].rstrip().endswith("no")


def test_background_is_part_of_the_cache_key(tmp_path, capsys):
    rgba = np.zeros((8, 8, 4), np.uint8)
    save_image(tmp_path / "icons" / "clear.png", rgba)
    white = load_dataset("folder", tmp_path / "icons", image_size=8)
    black = load_dataset("folder", tmp_path / "icons", image_size=8, background="black")
    assert white.images.min() == 255 and black.images.max() == 0 and len(entries()) == 2
    assert load_dataset("folder", tmp_path / "icons", image_size=8, background="255,255,255").images.min() == 255
    assert len(entries()) == 2  # "white" and "255,255,255" are the same preparation
    assert main(["datasets", "prepare", "folder", "--data-dir", str(tmp_path / "icons"), "--background", "1,2",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ganforge: error: --background: expected white, black or R,G,B") and "\n" not in err
    assert "'1,2'" in err


def test_train_on_a_folder_of_my_own_images(tmp_path, monkeypatch):
    """What a new user does: a folder of pictures of mixed sizes, one command."""
    rng = np.random.default_rng(0)
    for i in range(40):
        h, w = rng.integers(20, 60, 2)
        save_image(tmp_path / "pics" / f"{i:03d}.{'png' if i % 2 else 'jpg'}",
                   rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--dataset", "folder", "--data-dir", "pics", "--image-size", "8", "--steps", "2",
                 "--batch-size", "8", "--ngf", "4", "--ndf", "4", "--out", "run", "--no-progress",
                 "--log-every", "1", "--batches", "stream"]) == 0
    rows = Run.open(tmp_path / "run").rows()
    assert [r["step"] for r in rows] == [1, 2] and (tmp_path / "run" / "generator.safetensors").is_file()


# -- the real files ----------------------------------------------------------------------------------
def test_real_mnist_prepares_to_known_statistics():
    mnist = SHARED_DATA / "mnist"
    if not mnist.is_dir():
        pytest.skip(f"real MNIST not found at {mnist} (the repository's ../shared/data/mnist)")
    data = load_dataset("mnist", mnist)
    assert data.images.shape == (60000, 1, 28, 28) and data.labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert abs(float(data.images[:1000].mean()) / 255 - 0.1307) < 0.01  # the well-known MNIST mean
    raw = gzip.decompress((mnist / "t10k-labels-idx1-ubyte.gz").read_bytes())
    assert hashlib.md5(raw).hexdigest() == "27ae3e4e09519cfbb04c329615203637"
    assert raw == idx_bytes(load_dataset("mnist", mnist, split="test", cache=False).labels.astype(np.uint8))


@pytest.mark.parametrize("args, message", [
    (["--channels", "2"], "--channels must be 1 or 3, got 2"),
    (["--max-images", "0"], "--max-images must be at least 1, got 0"),
    (["--batches", "disk"], "'disk' is not one of"),
    (["--background", "purple"], "--background: expected white, black or R,G,B with three integers 0-255"),
])
def test_bad_data_options_exit_2(args, message, capsys, tmp_path):
    assert main(["train", "--steps", "1", "--out", str(tmp_path / "run"), "--no-progress", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ganforge: error:") and message in err and "\n" not in err
