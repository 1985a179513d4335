"""Every source on tiny fixtures made here, and every bad input with its error (no prepare cache: cache=False)."""

import gzip
import logging
import pickle
import sys

import numpy as np
import pytest
from PIL import Image

from ganforge.cli import main
from ganforge.data import load_dataset
from ganforge.data.transforms import convert_channels
from ganforge.errors import ConfigError, DataError

from .helpers import idx_bytes, save_image, solid, write_cifar, write_idx_set


@pytest.fixture(autouse=True)
def _cache(monkeypatch, tmp_path):
    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path / "cache"))


def load(name, data_dir, **kw):
    return load_dataset(name, data_dir, cache=False, **kw)


# -- IDX (mnist, fashion-mnist, kmnist) -------------------------------------------------------------
@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "kmnist"])
def test_idx_sets_read_images_and_labels(tmp_path, name):
    images, labels = write_idx_set(tmp_path, n=12)
    data = load(name, tmp_path)
    assert data.images.shape == (12, 1, 28, 28) and data.images.dtype == np.uint8
    assert np.array_equal(data.images[:, 0], images)
    assert data.labels.tolist() == labels.tolist() and data.num_classes == 10
    assert data.name == name


def test_idx_test_split_and_uncompressed_files(tmp_path):
    images, _ = write_idx_set(tmp_path, n=5, split="test")
    for f in tmp_path.glob("*.gz"):  # the same files, gunzipped
        f.with_suffix("").write_bytes(gzip.decompress(f.read_bytes()))
        f.unlink()
    assert np.array_equal(load("mnist", tmp_path, split="test").images[:, 0], images)


def test_idx_channels_and_size_options(tmp_path):
    images, _ = write_idx_set(tmp_path, n=4)
    data = load("mnist", tmp_path, channels=3, image_size=14, max_images=2)
    assert data.images.shape == (2, 3, 14, 14)
    assert np.array_equal(data.images[:, 0], data.images[:, 2])
    # Box filter: each output pixel is the mean of a 2×2 block of the input.
    block = images[0, :2, :2].astype(float).mean()
    assert abs(float(data.images[0, 0, 0, 0]) - block) <= 1.0


@pytest.mark.parametrize("content, message", [
    (lambda raw: gzip.compress(raw)[:-20], "not a valid gzip file"),  # truncated download
    (lambda raw: b"<html>404 not found</html>", "bad magic number"),  # not gzip, not IDX
    (lambda raw: b"\x00\x00\x07\x03" + raw[4:], "bad magic number"),  # wrong type byte
    (lambda raw: raw[:-100], "truncated or padded IDX"),  # uncompressed but short
])
def test_bad_idx_files(tmp_path, content, message):
    write_idx_set(tmp_path, n=3)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(content(gzip.decompress(path.read_bytes())))
    with pytest.raises(DataError, match=message) as e:
        load("mnist", tmp_path)
    assert "train-images-idx3-ubyte.gz" in str(e.value)


def test_idx_image_and_label_counts_disagree(tmp_path):
    write_idx_set(tmp_path, n=6)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(5, np.uint8))))
    with pytest.raises(DataError, match="6 images but train-labels-idx1-ubyte.gz has 5 labels"):
        load("mnist", tmp_path)


def test_idx_missing_file_says_where_to_put_it(tmp_path):
    write_idx_set(tmp_path, n=3)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="no train-labels-idx1-ubyte.gz .*put the official IDX files there"):
        load("mnist", tmp_path)


def test_cli_reports_bad_data_in_one_line(tmp_path, capsys):
    write_idx_set(tmp_path, n=3)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8bjunk")
    assert main(["datasets", "prepare", "mnist", "--data-dir", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ganforge: error:") and "not a valid gzip file" in err and "\n" not in err


# -- CIFAR-10 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("tarball", [True, False])
def test_cifar10_tarball_and_folder(tmp_path, tarball):
    write_cifar(tmp_path, n=3, tarball=tarball)
    train, test = load("cifar10", tmp_path), load("cifar10", tmp_path, split="test")
    assert train.images.shape == (15, 3, 32, 32) and test.images.shape == (3, 3, 32, 32)
    # Rows are R plane, G plane, B plane: image 2 of each batch is (2, 102, 202) everywhere.
    assert train.images[2, :, 5, 7].tolist() == [2, 102, 202]
    assert train.labels[:6].tolist() == [1, 2, 3, 2, 3, 4]
    assert test.labels.tolist() == [7, 8, 9] and train.class_names[0] == "airplane"
    assert not (tmp_path / "cifar-10-batches-py" / "data_batch_1").exists() or not tarball  # nothing unpacked


class _Exploit:
    def __reduce__(self):
        return (exec, ("open('PWNED', 'w').close()",))


def test_cifar10_refuses_code_in_pickles(tmp_path, monkeypatch):
    folder = write_cifar(tmp_path, n=2, tarball=False)
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": _Exploit(), b"labels": []}, protocol=2))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="data_batch_3: not a CIFAR-10 python batch .*refusing to load .*exec"):
        load("cifar10", tmp_path)
    assert not (tmp_path / "PWNED").exists()


def test_cifar10_truncated_tarball_and_missing_batch(tmp_path):
    path = write_cifar(tmp_path / "a", n=2)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DataError, match="not a readable tar.gz"):
        load("cifar10", tmp_path / "a")
    folder = write_cifar(tmp_path / "b", n=2, tarball=False)
    (folder / "data_batch_4").unlink()
    with pytest.raises(DataError, match="missing CIFAR-10 batch"):
        load("cifar10", tmp_path / "b")


# -- folder -----------------------------------------------------------------------------------------
def _mixed_folder(root):
    """Two classes; mixed sizes and modes (RGB, gray, RGBA, palette, 16-bit gray, JPEG)."""
    stripes = np.zeros((20, 60, 3), np.uint8)
    stripes[:, :20], stripes[:, 20:40], stripes[:, 40:] = (255, 0, 0), (0, 255, 0), (0, 0, 255)
    save_image(root / "cats" / "a.png", stripes)  # wide: the centre crop is the green third
    save_image(root / "cats" / "b.png", np.full((30, 10), 200, np.uint8))  # gray, tall
    save_image(root / "cats" / "nested" / "c.webp", solid(16, 16, (10, 20, 30)))
    rgba = np.dstack([solid(24, 24, (0, 0, 255)), np.full((24, 24), 128, np.uint8)])
    save_image(root / "dogs" / "d.png", rgba)
    save_image(root / "dogs" / "e.gif", Image.fromarray(solid(12, 12, (255, 0, 0))).convert("P"))
    save_image(root / "dogs" / "f.png", Image.fromarray(np.full((8, 8), 40000, np.uint16)))
    save_image(root / "dogs" / "g.jpg", solid(256, 256, (0, 128, 0)))


def test_folder_classes_crop_resize_and_modes(tmp_path):
    _mixed_folder(tmp_path)
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")
    data = load("folder", tmp_path, image_size=16)
    assert data.images.shape == (7, 3, 16, 16)
    assert data.class_names == ("cats", "dogs") and data.labels.tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert data.images[0, :, 8, 8].tolist() == [0, 255, 0]  # centre crop of the stripes
    assert data.images[1, :, 8, 8].tolist() == [200, 200, 200]
    assert data.images[3, :, 8, 8].tolist() == [127, 127, 255]  # half-transparent blue over white
    assert data.images[4, :, 8, 8].tolist() == [255, 0, 0]
    assert data.images[5, :, 8, 8].tolist() == [40000 >> 8] * 3  # 16-bit gray: top 8 bits
    assert all(abs(int(v) - ref) <= 3 for v, ref in zip(data.images[6, :, 8, 8], (0, 128, 0), strict=True))


def test_folder_unlabeled_gray_and_flat(tmp_path):
    _mixed_folder(tmp_path)
    data = load("folder", tmp_path, image_size=8, channels=1, unlabeled=True)
    assert data.images.shape == (7, 1, 8, 8) and data.labels is None
    assert data.images[4, 0, 4, 4] == 76  # pure red -> ITU-R 601-2 luma
    flat = tmp_path / "flat"
    save_image(flat / "x.png", solid(10, 10, (1, 2, 3)))
    save_image(flat / "sub" / "y.png", solid(10, 10, (1, 2, 3)))
    assert load("folder", flat, image_size=8).labels is None  # images at the top level: no classes


def test_folder_downscaling_is_antialiased(tmp_path):
    checker = (np.indices((64, 64)).sum(0) % 2 * 255).astype(np.uint8)
    save_image(tmp_path / "c.png", checker)
    data = load("folder", tmp_path, image_size=16, channels=1)
    assert abs(float(data.images.mean()) - 127.5) < 2 and float(data.images.std()) < 2  # not aliased to 0/255


def test_folder_applies_exif_orientation(tmp_path):
    img = np.zeros((10, 20, 3), np.uint8)
    img[:, :10], img[:, 10:] = (255, 0, 0), (0, 0, 255)  # stored: red left, blue right
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display": red ends up on top
    Image.fromarray(img).save(tmp_path / "phone.jpg", quality=95, exif=exif)
    data = load("folder", tmp_path, image_size=8)
    top, bottom = data.images[0, :, 1, 4].tolist(), data.images[0, :, 6, 4].tolist()
    assert top[0] > 200 > top[2] and bottom[2] > 200 > bottom[0]


def test_folder_default_size_is_64(tmp_path):
    save_image(tmp_path / "a.png", solid(100, 80, (5, 5, 5)))
    assert load("folder", tmp_path).images.shape == (1, 3, 64, 64)


def test_folder_unreadable_images_skipped_and_counted(tmp_path, caplog):
    _mixed_folder(tmp_path)
    (tmp_path / "cats" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    jpg = (tmp_path / "dogs" / "g.jpg").read_bytes()
    (tmp_path / "dogs" / "h.jpg").write_bytes(jpg[: len(jpg) // 2])  # truncated
    (tmp_path / "dogs" / "._g.jpg").write_bytes(b"macOS resource fork")  # hidden: not even counted
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        data = load("folder", tmp_path, image_size=8)
    assert len(data) == 7 and data.labels.tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert len(data.skipped) == 2
    assert "skipped 2 unreadable image(s) of 9" in caplog.text and "broken.png" in caplog.text
    with pytest.raises(DataError, match=r"broken\.png.*unreadable image.*--strict"):
        load("folder", tmp_path, image_size=8, strict=True)


@pytest.mark.parametrize("make", [lambda p: None, lambda p: (p / "readme.txt").write_text("hi")])
def test_folder_without_images(tmp_path, make):
    make(tmp_path)
    with pytest.raises(DataError, match="no images found"):
        load("folder", tmp_path)


def test_folder_all_unreadable(tmp_path):
    (tmp_path / "a.png").write_bytes(b"nope")
    with pytest.raises(DataError, match="none of the 1 images could be read"):
        load("folder", tmp_path)


def _transparent_folder(root):
    """A red square on a fully transparent background, in the modes that carry transparency, and an opaque image."""
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[4:12, 4:12] = (255, 0, 0, 255)
    save_image(root / "a_rgba.png", rgba)
    la = np.zeros((16, 16, 2), np.uint8)
    la[4:12, 4:12] = (100, 255)
    save_image(root / "b_la.png", Image.fromarray(la, "LA"))
    palette = Image.fromarray(rgba[..., :3]).convert("P")
    palette.info["transparency"] = palette.getpixel((0, 0))  # the background's palette entry
    save_image(root / "c_palette.png", palette)
    save_image(root / "d_opaque.png", solid(16, 16, (10, 20, 30)))


@pytest.mark.parametrize(("background", "rgb"), [("white", (255, 255, 255)), ("black", (0, 0, 0)),
                                                 (" 10, 200,30 ", (10, 200, 30)), ("WHITE", (255, 255, 255))])
def test_folder_composites_transparency_over_the_background(tmp_path, background, rgb):
    _transparent_folder(tmp_path)
    data = load("folder", tmp_path, image_size=16, background=background)
    for i in range(3):  # RGBA, LA, palette with a transparent entry: the corner is the background
        assert tuple(data.images[i, :, 0, 0]) == rgb
    assert tuple(data.images[0, :, 8, 8]) == (255, 0, 0) and tuple(data.images[2, :, 8, 8]) == (255, 0, 0)
    assert tuple(data.images[1, :, 8, 8]) == (100, 100, 100)
    assert tuple(data.images[3, :, 0, 0]) == (10, 20, 30)  # opaque: unchanged
    gray = load("folder", tmp_path, image_size=16, channels=1, background=background)
    assert gray.images[0, 0, 0, 0] == round((rgb[0] * 299 + rgb[1] * 587 + rgb[2] * 114) / 1000)


@pytest.mark.parametrize("background", ["purple", "1,2", "1,2,256", "-1,0,0", "1.5,2,3", ""])
def test_bad_background_names_the_option(tmp_path, background):
    save_image(tmp_path / "a.png", solid(8, 8, (1, 2, 3)))
    with pytest.raises(ConfigError, match=r"--background: expected white, black or R,G,B"):
        load("folder", tmp_path, background=background)


# -- npz --------------------------------------------------------------------------------------------
def test_npz_layouts_agree(tmp_path):
    rng = np.random.default_rng(0)
    nhwc = rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", images=nhwc, labels=np.array([0, 1, 2, 1]))
    np.savez(tmp_path / "b.npz", images=nhwc.transpose(0, 3, 1, 2))
    np.savez(tmp_path / "c.npz", images=nhwc[..., 0])
    a, b, c = (load("npz", tmp_path / f"{k}.npz") for k in "abc")
    assert np.array_equal(a.images, b.images) and a.images.shape == (4, 3, 8, 8)
    assert np.array_equal(c.images[:, 0], nhwc[..., 0])
    assert a.labels.tolist() == [0, 1, 2, 1] and b.labels is None


@pytest.mark.parametrize("arrays, message", [
    ({"images": np.zeros((2, 8, 8, 3), np.float32)}, "images must be uint8"),
    ({"images": np.zeros((2, 8, 8, 5), np.uint8)}, r"must be \[N, H, W, C\] or \[N, C, H, W\]"),
    ({"images": np.zeros((8, 8), np.uint8)}, "got shape"),
    ({"images": np.zeros((3, 8, 8), np.uint8), "labels": np.zeros(2, int)}, "3 images but 2 labels"),
    ({"images": np.zeros((2, 8, 8), np.uint8), "labels": np.zeros(2)}, "1-D integer array"),
    ({"images": np.zeros((2, 8, 8), np.uint8), "labels": np.array([0, -1])}, "labels must be >= 0"),
    ({"pixels": np.zeros((2, 8, 8), np.uint8)}, "no 'images' array"),
])
def test_bad_npz(tmp_path, arrays, message):
    np.savez(tmp_path / "x.npz", **arrays)
    with pytest.raises(DataError, match=message):
        load("npz", tmp_path / "x.npz")


def test_npz_not_a_file_or_not_npz(tmp_path):
    with pytest.raises(DataError, match="is not a file"):
        load("npz", tmp_path)
    (tmp_path / "x.npz").write_bytes(b"garbage")
    with pytest.raises(DataError, match="not a readable .npz"):
        load("npz", tmp_path / "x.npz")


# -- lsun -------------------------------------------------------------------------------------------
def _lmdb_db(path, images):
    lmdb = pytest.importorskip("lmdb")
    env = lmdb.open(str(path), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for i, blob in enumerate(images):
            txn.put(f"{i:04d}".encode(), blob)
    env.close()


def _webp(rgb, size=(40, 30)):
    buf = __import__("io").BytesIO()
    Image.fromarray(solid(size[1], size[0], rgb)).save(buf, format="WEBP", lossless=True)
    return buf.getvalue()


def test_lsun_lmdb_one_and_many_databases(tmp_path, caplog):
    _lmdb_db(tmp_path / "bedroom_train_lmdb", [_webp((255, 0, 0)), b"corrupt", _webp((0, 0, 255))])
    _lmdb_db(tmp_path / "kitchen_train_lmdb", [_webp((0, 255, 0))])
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        one = load("lsun", tmp_path / "bedroom_train_lmdb", image_size=8)
    assert one.images.shape == (2, 3, 8, 8) and one.labels is None
    assert one.images[1, :, 4, 4].tolist() == [0, 0, 255] and "skipped 1 unreadable" in caplog.text
    both = load("lsun", tmp_path, image_size=8)
    assert both.class_names == ("bedroom", "kitchen") and both.labels.tolist() == [0, 0, 1]
    assert load("lsun", tmp_path, image_size=8, max_images=2).labels.tolist() == [0, 1]


def test_lsun_without_lmdb_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "lmdb", None)  # import lmdb -> ImportError
    with pytest.raises(DataError, match=r"pip install 'ganforge\[lsun\]'"):
        load("lsun", tmp_path)


def test_lsun_folder_without_database(tmp_path):
    pytest.importorskip("lmdb")
    with pytest.raises(DataError, match="no LMDB database"):
        load("lsun", tmp_path)


# -- registry-level errors ---------------------------------------------------------------------------
def test_registry_errors(tmp_path):
    with pytest.raises(DataError, match="unknown dataset 'celeba'; choose one of"):
        load("celeba", None)
    with pytest.raises(DataError, match="--dataset folder needs --data-dir"):
        load("folder", None)
    with pytest.raises(DataError, match="did you mean|use --dataset folder"):
        load("digits", tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load("mnist", tmp_path / "nope")
    with pytest.raises(DataError, match="has no 'test' split"):
        load("folder", tmp_path, split="test")
    with pytest.raises(DataError, match="--channels must be 1 or 3"):
        load("digits", None, channels=2)


def test_convert_channels_round_trip():
    gray = np.arange(16, dtype=np.uint8).reshape(1, 1, 4, 4)
    assert np.array_equal(convert_channels(convert_channels(gray, 3), 1), gray)
