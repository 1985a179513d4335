"""Fuzzing every file format ganforge reads: valid files, mutated (bit flips, truncation, insertion, deletion,
overwrites, splices of other valid files), outside and inside their compression or archive layer.

Each case must give a result or a ``GanforgeError`` whose message names the file: never another
exception (a traceback at the CLI), never a hang. The number of cases per format is printed at the end of
the pytest run (conftest.py).
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import random
import signal
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis.strategies import randoms
from PIL import Image

import ganforge
from ganforge import Config, GanforgeError
from ganforge.data.base import PrepOptions
from ganforge.data.cifar import load_cifar10
from ganforge.data.decode import decode_all
from ganforge.data.idx import load_idx_dataset, read_idx
from ganforge.data.npz import load_npz

from .helpers import SUMMARY, cifar_batch, idx_bytes, tiny_config

CASES = int(os.environ.get("GANFORGE_FUZZ_CASES", 2000))  # per format; raise it for a longer fuzzing session
HANG = 10  # seconds: a case that takes longer is a hang
# Hypothesis picks each case's seed (derandomized: the same cases every run, and a failure prints the seed
# that makes it); the mutations come from that seed, which costs far less per case than drawing each one
# from hypothesis, and 8 formats × 2,000 cases have to run in a minute or two on two cores.
FUZZ = settings(max_examples=CASES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
SEED = randoms(use_true_random=True)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def mutate(rng: random.Random, seeds: list[bytes]) -> bytes:
    """One valid seed with 0-4 mutations (0: the valid file itself, which must still be read)."""
    data = bytearray(rng.choice(seeds))
    for _ in range(rng.choice([0, 1, 1, 2, 2, 3, 4])):
        op = rng.choice(["flip", "flip", "byte", "truncate", "insert", "delete", "splice"])
        at = rng.randint(0, len(data))
        if op == "flip" and data:
            data[min(at, len(data) - 1)] ^= 1 << rng.randrange(8)
        elif op == "byte" and data:  # an interesting value: 0, 0xff, 0x7f, 0x80, a digit, a space
            data[min(at, len(data) - 1)] = rng.choice([0, 0xFF, 0x7F, 0x80, 0x39, 0x20])
        elif op == "truncate":
            del data[at:]
        elif op == "insert":
            data[at:at] = rng.randbytes(rng.randint(1, 16))
        elif op == "delete":
            del data[at:at + rng.randint(1, 64)]
        elif op == "splice":  # a piece of another valid file
            donor = rng.choice(seeds)
            start = rng.randint(0, len(donor))
            data[at:at + rng.randint(0, 64)] = donor[start:start + rng.randint(1, 256)]
    return bytes(data)


class Hang(Exception):
    pass


Case = Callable[[random.Random], tuple[list[Path], Callable[[], object]]]


def fuzz(name: str, case: Case, or_option: bool = False) -> None:
    """Run ``case`` on CASES seeds. It writes a file and returns (the files it names, how to read them); the
    read must succeed or raise a GanforgeError that names one of them (or, with ``or_option``, the --option
    at fault), within HANG seconds. The number of cases goes to the summary printed at the end of the run."""
    count = 0

    def hang(*_: object) -> None:
        raise Hang(f"{name}: a case took more than {HANG} s")

    @FUZZ
    @given(rng=SEED)
    def one(rng: random.Random) -> None:
        nonlocal count
        count += 1
        paths, read = case(rng)
        previous = signal.signal(signal.SIGALRM, hang)
        signal.alarm(HANG)
        try:
            read()
        except GanforgeError as e:  # the CLI prints it on one line, without a traceback, and exits 2
            assert any(p.name in str(e) for p in paths) or (or_option and str(e).startswith("--")), e
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)

    one()
    SUMMARY[f"fuzz {name}"] = f"{count} cases"
    assert count >= CASES


# -- IDX (MNIST) ---------------------------------------------------------------------------------------------

def _idx_seeds() -> tuple[list[bytes], list[bytes]]:
    rng = np.random.default_rng(0)
    images, labels = idx_bytes(rng.integers(0, 256, (3, 5, 5))), idx_bytes(np.arange(3))
    return [images, gzip.compress(images, mtime=0)], [labels, gzip.compress(labels, mtime=0)]


IDX_IMAGES, IDX_LABELS = _idx_seeds()


@pytest.mark.slow
def test_fuzz_idx(work):
    def case(rng: random.Random) -> tuple[list[Path], Callable[[], object]]:
        images, labels = mutate(rng, IDX_IMAGES), mutate(rng, IDX_LABELS)
        if rng.random() < 0.5:  # mutated IDX bytes in a valid gzip stream
            images = gzip.compress(images, mtime=0)
        img, lbl = work / "train-images-idx3-ubyte.gz", work / "train-labels-idx1-ubyte.gz"
        img.write_bytes(images)
        lbl.write_bytes(labels)
        return [img, lbl], lambda: load_idx_dataset("mnist", img, lbl, tuple("0123456789"))

    fuzz("IDX", case)


# -- CIFAR-10 batches (pickles in a tar.gz) ------------------------------------------------------------------

def _tarball(batch: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/test_batch")
        info.size = len(batch)
        tar.addfile(info, io.BytesIO(batch))
    return buf.getvalue()


CIFAR_BATCHES = [cifar_batch(2, 0)[0], pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [3]})]
CIFAR_TARBALLS = [_tarball(b) for b in CIFAR_BATCHES]


@pytest.mark.slow
def test_fuzz_cifar(work):
    def case(rng: random.Random) -> tuple[list[Path], Callable[[], object]]:
        path = work / "cifar-10-python.tar.gz"  # the tarball mutated, or a mutated pickle in a valid tarball
        inner = rng.random() < 0.5
        path.write_bytes(_tarball(mutate(rng, CIFAR_BATCHES)) if inner else mutate(rng, CIFAR_TARBALLS))
        return [path], lambda: load_cifar10([path], "test")

    fuzz("CIFAR-10", case)


# -- npz -----------------------------------------------------------------------------------------------------

def _npz(compressed: bool, **arrays) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


NPZ_ARRAYS = dict(images=np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3),
                  labels=np.array([0, 1]), class_names=np.array(["a", "b"]))
NPZ_FILES = [_npz(False, **NPZ_ARRAYS), _npz(True, **NPZ_ARRAYS),
             _npz(False, images=NPZ_ARRAYS["images"][..., 0])]
NPY_MEMBERS = [_npy(a) for a in NPZ_ARRAYS.values()]


@pytest.mark.slow
def test_fuzz_npz(work):
    def case(rng: random.Random) -> tuple[list[Path], Callable[[], object]]:
        path = work / "data.npz"
        if rng.random() < 0.5:  # a mutated .npy inside a valid zip
            which = rng.choice(list(NPZ_ARRAYS))
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as z:
                for name, member in zip(NPZ_ARRAYS, NPY_MEMBERS, strict=True):
                    z.writestr(f"{name}.npy", mutate(rng, [member]) if name == which else member)
            path.write_bytes(buf.getvalue())
        else:
            path.write_bytes(mutate(rng, NPZ_FILES))
        return [path], lambda: load_npz(path)

    fuzz("npz", case)


# -- images (folder, LSUN values): every format Pillow decodes for ganforge ----------------------------------

def _image_files() -> list[bytes]:
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (5, 6, 3), dtype=np.uint8))
    out = []
    gray16 = Image.fromarray(np.arange(30, dtype=np.uint16).reshape(5, 6) * 2000)
    for img, fmt, kw in [(rgb, "PNG", {}), (rgb.convert("L"), "PNG", {}), (gray16, "PNG", {}),
                         (rgb.convert("P"), "PNG", {"transparency": 0}), (rgb, "JPEG", {"quality": 50}),
                         (rgb, "GIF", {}), (rgb, "BMP", {}), (rgb, "WEBP", {}), (rgb, "TIFF", {}),
                         (rgb.convert("L"), "PPM", {})]:
        buf = io.BytesIO()
        img.save(buf, format=fmt, **kw)
        out.append(buf.getvalue())
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: exercises the EXIF transpose
    buf = io.BytesIO()
    rgb.save(buf, format="JPEG", exif=exif.tobytes())
    return [*out, buf.getvalue()]


IMAGES = _image_files()


@pytest.mark.slow
def test_fuzz_images(work):
    def case(rng: random.Random) -> tuple[list[Path], Callable[[], object]]:
        path = work / "image.png"
        path.write_bytes(mutate(rng, IMAGES))
        channels = rng.choice([1, 3])
        return [path], lambda: decode_all([(str(path), lambda: path)], 1, None, 8, channels, None,
                                          strict=True, progress=False, what=str(work))

    fuzz("images", case)


# -- LSUN LMDB records ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_fuzz_lmdb_records(work):
    lmdb = pytest.importorskip("lmdb")
    from ganforge.data.lsun import load_lsun

    def case(rng: random.Random) -> tuple[list[Path], Callable[[], object]]:
        db = work / "bedroom_train_lmdb"
        for f in db.glob("*.mdb"):
            f.unlink()
        with lmdb.open(str(db), map_size=1 << 20) as env, env.begin(write=True) as txn:
            for _ in range(rng.randint(1, 3)):  # records with mutated images under random keys
                txn.put(rng.randbytes(rng.randint(1, 24)), mutate(rng, IMAGES))
        strict = rng.random() < 0.5
        return [db], lambda: load_lsun(db, PrepOptions(image_size=8, strict=strict))

    fuzz("LMDB records", case)


# -- config YAML ---------------------------------------------------------------------------------------------

CONFIGS = [yaml.safe_dump(Config().to_dict(), sort_keys=False).encode(),
           b"dataset: mnist\nsteps: 300\nclasses: [3, 5]\naugment: color,translation\npreset: fast\n",
           b"model:\n  model: mlp\n  g_hidden: [8, 8]\ntrain:\n  lr_g: 1.0e-3\n  time_limit: 60\n"]


@pytest.mark.slow
def test_fuzz_config_yaml(work):
    def case(rng: random.Random) -> tuple[list[Path], Callable[[], object]]:
        path = work / "config.yaml"
        path.write_bytes(mutate(rng, CONFIGS))
        return [path], lambda: Config.load(path)

    # A valid YAML value that an option refuses is named by its --option (config.py's validation messages).
    fuzz("config YAML", case, or_option=True)


# -- checkpoints and exported generators ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[Path]:
    """Two tiny runs (no EMA: re-estimating its BatchNorm statistics would cost more than reading the file)"""
    tmp = tmp_path_factory.mktemp("fuzz-runs")
    small = dict(ngf=4, ndf=4, z_dim=4, embed_dim=2, g_hidden=[4], d_hidden=[4], steps=1, log_every=1,
                 ema_decay=0.0)
    return [ganforge.train(tiny_config(tmp / "a", **small), progress=False).path,
            ganforge.train(tiny_config(tmp / "b", model="mlp", conditional=True, classes=[2, 5], **small),
                           progress=False).path]


@pytest.fixture(scope="module")
def checkpoints(runs) -> tuple[list[bytes], list[bytes]]:
    """The runs' checkpoints, and the pickle (data.pkl) inside each."""
    files = [(r / "checkpoints" / "latest.pt").read_bytes() for r in runs]
    archives = [zipfile.ZipFile(io.BytesIO(f)) for f in files]
    return files, [z.read(next(n for n in z.namelist() if n.endswith("data.pkl"))) for z in archives]


def _rezip(checkpoint: bytes, pickle_bytes: bytes) -> bytes:
    """The checkpoint with its data.pkl replaced (a mutated pickle in a valid zip)."""
    src, buf = zipfile.ZipFile(io.BytesIO(checkpoint)), io.BytesIO()
    with zipfile.ZipFile(buf, "w") as out:
        for info in src.infolist():
            is_pickle = info.filename.endswith("data.pkl")
            out.writestr(info.filename, pickle_bytes if is_pickle else src.read(info))
    return buf.getvalue()


@pytest.mark.slow
def test_fuzz_checkpoints(runs, checkpoints, work):
    def case(rng: random.Random) -> tuple[list[Path], Callable[[], object]]:
        files, pickles = checkpoints
        which = rng.randrange(len(runs))
        path = work / "fuzzed.pt"  # the file mutated, or a mutated pickle in a valid zip
        inner = rng.random() < 0.5
        path.write_bytes(_rezip(files[which], mutate(rng, pickles)) if inner else mutate(rng, files))
        return [path], lambda: ganforge.load_generator(runs[which], checkpoint=str(path), device="cpu")

    fuzz("checkpoints", case)


@pytest.mark.slow
def test_fuzz_safetensors(runs, work):
    def case(rng: random.Random) -> tuple[list[Path], Callable[[], object]]:
        path = work / "generator.safetensors"
        path.write_bytes(mutate(rng, [(r / "generator.safetensors").read_bytes() for r in runs]))
        return [path], lambda: ganforge.load_generator(path, device="cpu")  # read_generator_file inside

    fuzz("safetensors", case)


# -- what mutation rarely reaches: huge claims and bombs -----------------------------------------------------

def test_idx_header_claiming_2_31_images_allocates_nothing(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    header = bytes([0, 0, 8, 3]) + (2**31).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    path.write_bytes(header + b"\0" * 100)
    with pytest.raises(GanforgeError, match="train-images-idx3-ubyte: truncated or padded IDX file"):
        read_idx(path)


def test_image_decompression_bomb_is_refused(tmp_path):
    """A PNG header claiming 40000×40000 pixels (a 1.6 GB decode) is refused before anything is decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 40000, 40000, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))
    path = tmp_path / "bomb.png"
    path.write_bytes(png)
    with pytest.raises(GanforgeError, match="bomb.png: .*decompression bomb"):
        decode_all([(str(path), lambda: path)], 1, None, 8, 3, None, strict=True, progress=False, what="x")


def test_a_gzip_bomb_in_an_idx_file_is_read_no_further_than_its_header_says(tmp_path):
    """10 labels claimed, 100 MB of zeros compressed to 100 kB: reading stops after the 10 bytes + 1."""
    import tracemalloc

    compressor = gzip.GzipFile  # streamed, so the test itself never holds the 100 MB
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    with compressor(path, "wb", mtime=0) as f:
        f.write(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big"))
        for _ in range(100):
            f.write(bytes(1 << 20))
    tracemalloc.start()
    try:
        with pytest.raises(GanforgeError, match="train-labels-idx1-ubyte.gz: truncated or padded IDX file"):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 << 20, peak


def test_a_pickle_memo_index_of_4_billion_allocates_nothing(tmp_path):
    """PROTO 2, EMPTY_DICT, LONG_BINPUT 0xF0000000, STOP: the C unpickler would size its memo to 32 GB."""
    import struct
    import tracemalloc

    path = tmp_path / "cifar-10-batches-py"
    path.mkdir()
    for name in ("data_batch_1", "test_batch"):
        (path / name).write_bytes(b"\x80\x02}r" + struct.pack("<I", 0xF0000000) + b".")
    tracemalloc.start()
    try:
        with pytest.raises(GanforgeError, match="test_batch: not a CIFAR-10 python batch"):
            load_cifar10([path / "data_batch_1", path / "test_batch"], "test")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 << 20, peak
