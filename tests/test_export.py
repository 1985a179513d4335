import json
import sys

import numpy as np
import pytest
import torch

import ganforge
from ganforge.export import ExportedGenerator, export_run, export_to_file, read_metadata
from ganforge.images import float_to_pixels

from .helpers import assert_one_line_error, run_cli, tiny_config

RUNS = {  # name -> tiny_config overrides
    "mlp": dict(model="mlp"),
    "dcgan": dict(model="dcgan"),
    "dcgan-cond": dict(model="dcgan", conditional=True),
    "mlp-cond-subset": dict(model="mlp", conditional=True, classes=[3, 5]),
    "resnet": dict(model="resnet", widths=[8], blocks=1, cardinality=2),
    "resnet-cond": dict(model="resnet", widths=[8], blocks=1, cardinality=2, conditional=True),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    return {name: ganforge.train(tiny_config(tmp / name, steps=2, **kw), progress=False).path
            for name, kw in RUNS.items()}


def inputs(g, n, seed=1):
    """Standard-normal z and (conditional) labels cycling through the trained classes."""
    z = torch.randn(n, g.z_dim, generator=torch.Generator().manual_seed(seed))
    return z, (torch.tensor(g.classes * n)[:n] if g.takes_labels else None)


def feed(g, z, y):
    return {"z": z.numpy()} | ({"label": y.numpy()} if y is not None else {})


# ONNX export and onnxruntime take a second or two a family: the quick tier checks two, CI all.
QUICK_ONNX = ("dcgan-cond", "resnet")


@pytest.mark.parametrize("name", [n if n in QUICK_ONNX else pytest.param(n, marks=pytest.mark.slow) for n in RUNS])
def test_onnx_float_matches_pytorch_at_another_batch_size(runs, name, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    path = export_run(runs[name], "onnx", tmp_path / "g.onnx", output="float")
    g = ganforge.load_generator(runs[name], device="cpu")  # the run's EMA generator
    session = ort.InferenceSession(str(path))
    assert [i.name for i in session.get_inputs()] == (["z", "label"] if g.takes_labels else ["z"])
    for n in (1, 5):  # exported with a batch of 2
        z, y = inputs(g, n)
        got = session.run(None, feed(g, z, y))[0]
        want = g(z, y).numpy()
        assert got.shape == want.shape == (n, g.channels, g.resolution, g.resolution)
        assert np.abs(got - want).max() < 1e-4


@pytest.mark.parametrize(("name", "output"), [pytest.param("dcgan", "fidelity", marks=pytest.mark.slow),
                                              ("dcgan-cond", "uint8")])
def test_onnx_pixels_match_ganforge_rounding(runs, name, output, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    path = export_run(runs[name], "onnx", tmp_path / "sub" / "g.onnx", output=output)  # a new folder
    g = ganforge.load_generator(runs[name], device="cpu")
    session = ort.InferenceSession(str(path))
    z, y = inputs(g, 6)
    got = session.run(None, feed(g, z, y))[0]
    pixels = float_to_pixels(g(z, y))  # (B, C, H, W)
    want = pixels.permute(0, 2, 3, 1) if output == "uint8" else pixels.repeat(1, 3, 1, 1)  # digits are gray
    assert got.dtype == np.uint8 and got.shape == tuple(want.shape)
    assert np.abs(got.astype(int) - want.numpy().astype(int)).max() <= 1  # float noise may cross a .5 boundary
    meta = read_metadata(path)
    assert meta["output"] == output and meta["output_shape"] == ["batch", *want.shape[1:]]
    assert meta["num_classes"] == g.num_classes and meta["classes"] == g.classes and meta["z_dim"] == 16
    custom = session.get_modelmeta().custom_metadata_map  # the documented way, without ganforge
    assert custom["z_dim"] == "16" and custom["resolution"] == "8" and custom["output"] == output


@pytest.mark.parametrize(("name", "output"), [("dcgan", "fidelity"), ("dcgan-cond", "float"), ("mlp-cond-subset", "uint8"),
                                             ("resnet-cond", "float")])
def test_torchscript_reload_matches_exactly(runs, name, output, tmp_path):
    path = export_run(runs[name], "torchscript", tmp_path / "g.pth", output=output)
    g = ganforge.load_generator(runs[name], device="cpu")
    loaded = torch.jit.load(str(path))
    z, y = inputs(g, 7)
    args = (z,) if y is None else (z, y)
    assert torch.equal(loaded(*args), ExportedGenerator(g, output)(*args))
    if output == "float":
        assert torch.equal(loaded(*args), g(z, y))


def test_torchscript_metadata_names_the_interface(runs, tmp_path):
    g = ganforge.load_generator(runs["mlp-cond-subset"], device="cpu")
    path = export_run(runs["mlp-cond-subset"], "torchscript", tmp_path / "g.pth", output="uint8")
    meta = read_metadata(path)
    assert meta["inputs"] == ["z", "label"] and meta["z_dim"] == g.z_dim == 16 and meta["z_type"] == "normal"
    assert meta["classes"] == [3, 5] and meta["num_classes"] == g.num_classes == 10
    assert meta["resolution"] == 8 and meta["channels"] == 1
    assert meta["output"] == "uint8" and meta["output_dtype"] == "uint8" and meta["output_shape"] == ["batch", 8, 8, 1]
    files = {"ganforge.json": ""}  # the documented way, without ganforge
    torch.jit.load(str(path), _extra_files=files)
    assert json.loads(files["ganforge.json"])["classes"] == [3, 5]


def test_read_metadata_refuses_a_file_ganforge_did_not_write(tmp_path):
    torch.jit.save(torch.jit.trace(torch.nn.Linear(2, 2), torch.zeros(1, 2)), str(tmp_path / "other.pth"))
    with pytest.raises(ganforge.RunError, match="not a file written by ganforge export"):
        read_metadata(tmp_path / "other.pth")


def test_a_channels_last_generator_exports_the_same_images(runs, tmp_path):
    # DCGAN's first layer computes a different product for channels-last weights; the export uses plain NCHW.
    g = ganforge.load_generator(runs["dcgan"], device="cpu")
    path = export_to_file(g.to(memory_format=torch.channels_last), tmp_path / "g.pth", "torchscript", "float")
    z, _ = inputs(g, 3)
    torch.testing.assert_close(torch.jit.load(str(path))(z), g(z))


def test_cli_export_writes_the_file(capsys, runs, tmp_path):
    out = tmp_path / "g.pth"
    code, _, err = run_cli(capsys, "export", str(runs["dcgan-cond"]), "--format", "torchscript", "--out", str(out),
                           "--checkpoint", "latest")
    assert code == 0 and out.is_file()
    assert "inputs z, label (z_dim 16), output uint8 [batch, 3, 8, 8]" in err


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--format", "tflite"], "Invalid value for '--format'"),
        (["--output", "png"], "Invalid value for '--output'"),
    ],
)
def test_cli_export_rejects_bad_options(capsys, runs, args, text):
    assert_one_line_error(*run_cli(capsys, "export", str(runs["dcgan"]), *args)[::2], text)


def test_cli_export_needs_a_run_with_a_generator(capsys, runs, tmp_path):
    assert_one_line_error(*run_cli(capsys, "export", str(tmp_path / "nope"))[::2], "no such run directory")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.yaml").write_text((runs["dcgan"] / "config.yaml").read_text())
    assert_one_line_error(*run_cli(capsys, "export", str(empty), "--format", "torchscript")[::2],
                          "has no generator.safetensors and no checkpoint")


def test_cli_onnx_without_onnx_says_what_to_install(capsys, runs, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    code, _, err = run_cli(capsys, "export", str(runs["dcgan"]), "--format", "onnx")
    assert_one_line_error(code, err, 'pip install "ganforge[export]"')
