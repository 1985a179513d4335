"""InfoGAN codes: the spec, the latent they live in, the information term, every command that draws, and the
measurement of what they mean."""

import json

import numpy as np
import pytest
import torch
from torch import nn

import ganforge
from ganforge import Config
from ganforge.codes import Codes
from ganforge.errors import ConfigError
from ganforge.export import export_run, read_metadata
from ganforge.losses import MutualInformation, make_objective
from ganforge.metrics.codes import categorical_agreement, continuous_correlations, slant, stroke_width
from ganforge.metrics.features import make_extractor
from ganforge.models import Generator, build_models, label_source, run_kind

from .helpers import expect_error, run_cli, tiny_config, weights

CODES = ["cat:4", "cont:2"]


def test_the_spec_names_each_code():
    codes = Codes.parse(["cat:10", "cont:2", "cat:3"])
    assert (codes.categorical, codes.continuous, codes.count, codes.dim) == ((10, 3), 2, 4, 15)
    assert codes.spec() == ["cat:10", "cat:3", "cont:2"] and Codes.parse(codes.spec()) == codes
    assert codes.describe(1) == "code 1 (categorical, 3 values)" and codes.describe(3) == "code 3 (continuous)"
    assert not Codes.parse([]) and not Codes()
    for bad, text in (("cat", "is not a code; write cat:K"), ("cont:0", "is not a code"), ("cat:1", "2 values or more")):
        with pytest.raises(ConfigError, match=text):
            Codes.parse([bad])
    with pytest.raises(ConfigError, match="there is no code 4; this generator's codes are: code 0"):
        codes.check_index(4)


def test_values_live_in_the_latent_one_hot_and_as_they_are():
    codes = Codes.parse(CODES)
    values = torch.tensor([[2.0, 0.5, -0.25], [0.0, -1.0, 1.0]])
    part = codes.encode(values)
    assert part.tolist() == [[0, 0, 1, 0, 0.5, -0.25], [1, 0, 0, 0, -1.0, 1.0]]
    assert torch.equal(codes.decode(part), values)
    assert codes.set(part, {0: 3, 2: 2.0}).tolist() == [[0, 0, 0, 1, 0.5, 2.0], [0, 0, 0, 1, -1.0, 2.0]]
    with pytest.raises(ConfigError, match=r"--code 0=4: code 0 \(categorical, 4 values\) takes 0..3"):
        codes.set(part, {0: 4})
    drawn = codes.sample(2000, torch.Generator().manual_seed(0))
    assert set(drawn[:, 0].tolist()) == {0.0, 1.0, 2.0, 3.0}
    assert drawn[:, 1:].min() >= -1 and drawn[:, 1:].max() <= 1
    assert codes.sweep_values(0) == [0, 1, 2, 3] and codes.sweep_values(1, steps=5) == [-2, -1, 0, 1, 2]


@pytest.mark.parametrize("model", ["mlp", "dcgan", "resnet"])
def test_every_family_reads_its_codes_and_q_reads_them_back(model):
    cfg = Config(model=model, codes=CODES, z_dim=6, ngf=8, ndf=8, widths=[8], blocks=1, cardinality=2,
                 g_hidden=[16], d_hidden=[16])
    g, d = build_models(cfg, 1, 8, 0)
    assert g.latent_dim == 6 + 6 and g.codes == Codes.parse(CODES)
    z = g.latents(5, seed=1)
    assert z.shape == (5, 12) and torch.equal(z, g.latents(5, seed=1))
    x = g(z)
    logits, q = d(x, None, codes=True)
    assert logits.shape == (5,) and q.shape == (5, 6) and torch.equal(d(x), logits)
    plain = build_models(cfg.replace(codes=[]), 1, 8, 0)[1]
    with pytest.raises(ConfigError, match="no Q head"):
        plain(x, None, codes=True)


def test_the_information_term_trains_q_and_d_in_d_s_loss_and_g_in_g_s():
    torch.manual_seed(0)
    cfg = Config(codes=CODES, z_dim=6, ngf=8, ndf=8)
    g, d = build_models(cfg, 1, 8, 0)
    objective = make_objective(cfg, torch.tensor([0]), torch.Generator().manual_seed(0), False, g.codes)
    assert objective.codes and any(isinstance(t, MutualInformation) for t in objective.terms)
    z = g.latents(8, seed=0)
    fake, real = g(z), torch.randn(8, 1, 8, 8)
    loss_d, stats = objective.discriminator(d, lambda x: x, real, None, fake, None, step=1, z=z)
    assert "loss_info" in stats and stats["loss_info"] > 0
    loss_d.backward()
    assert d.q.net[0].weight.grad.abs().sum() > 0  # Q learns in D's step
    assert all(p.grad is None for p in g.parameters())  # the fakes are detached there
    d.zero_grad()
    d.requires_grad_(False)
    loss_g, _ = objective.generator(d, lambda x: x, fake, None, z, real, None)
    loss_g.backward()
    code_inputs = next(p for p in g.parameters()).grad[6:]  # G's first layer's weights from the codes
    assert code_inputs.abs().sum() > 0


def test_codes_give_way_and_refuse_in_one_line():
    fast = Config(preset="fast", label_assist=False, codes=CODES)
    assert label_source(fast, 10) is None and run_kind(fast, 10) == "unconditional"  # the codes replace clusters
    assert label_source(Config(conditional=True, codes=CODES), 10) == "labels"  # a class and codes: both
    with pytest.raises(ConfigError, match="--clusters 5 with --codes cat:4,cont:2: the codes take the clusters'"):
        Config(clusters=5, codes=CODES)
    with pytest.raises(ConfigError, match="--codes with --pack 2"):
        Config(pack=2, codes=CODES)


def test_a_code_model_that_takes_labels_gets_no_mode_seeking():
    cfg = Config(codes=CODES, label_assist=True, mode_seeking=0.5)
    objective = make_objective(cfg, torch.arange(10), torch.Generator(), takes_labels=True, codes=Codes.parse(CODES))
    assert [type(t) for t in objective.terms] == [MutualInformation] and not objective.pairs_latents


def test_a_code_run_resumes_bit_exact_with_ema_and_conditional(tmp_path):
    cfg = dict(codes=CODES, conditional=True, checkpoint_every=100, sample_every=100)
    straight = ganforge.train(tiny_config(tmp_path / "a", steps=8, **cfg), progress=False)
    half = ganforge.train(tiny_config(tmp_path / "b", steps=4, **cfg), progress=False)
    resumed = ganforge.train(half.config.replace(steps=8), resume=half.path, progress=False)
    a, b = weights(straight.latest), weights(resumed.latest)
    assert all(torch.equal(a[k], b[k]) for k in a) and any(k.startswith("ema.") for k in a)
    assert all(np.isfinite(r["loss_info"]) for r in resumed.training_rows())


def test_bf16_with_codes(tmp_path):
    run = ganforge.train(tiny_config(tmp_path, steps=3, amp="bf16", codes=CODES), progress=False)
    assert all(np.isfinite(r["loss_info"]) for r in run.training_rows())


@pytest.fixture(scope="module")
def code_run(tmp_path_factory):
    return ganforge.train(tiny_config(tmp_path_factory.mktemp("codes"), steps=4, codes=CODES), progress=False)


def test_sample_sets_codes_and_keeps_them_in_the_latents(code_run, tmp_path, capsys):
    out = tmp_path / "g.png"
    code, _, err = run_cli(capsys, "sample", str(code_run.path), "--n", "6", "--code", "0=3", "--code", "2=-0.8",
                           "--out", str(out))
    assert code == 0, err
    z = np.load(out.with_suffix(".latents.npz"))["z"]
    g = code_run.load_generator(device="cpu")
    values = g.codes.decode(torch.from_numpy(z[:, g.z_dim:]))
    assert values[:, 0].tolist() == [3.0] * 6 and torch.allclose(values[:, 2], torch.full((6,), -0.8))
    assert len(set(values[:, 1].tolist())) == 6  # the codes not set come from each tile's seed
    expect_error(capsys, ["sample", str(code_run.path), "--code", "9=1"], "--code: there is no code 9")
    expect_error(capsys, ["sample", str(code_run.path), "--code", "0:1"], "--code: expected I=V")


def test_sweep_and_interpolate_along_a_code(code_run, tmp_path, capsys):
    path = str(code_run.path)
    assert run_cli(capsys, "sweep", path, "--seeds", "1,2", "--code", "0", "--out", str(tmp_path / "c.png"))[0] == 0
    assert run_cli(capsys, "sweep", path, "--seeds", "1", "--code", "1", "--out", str(tmp_path / "x.png"))[0] == 0
    from PIL import Image

    assert Image.open(tmp_path / "c.png").size[0] > Image.open(tmp_path / "x.png").size[0] * 4 / 9  # 4 vs 9 columns
    assert run_cli(capsys, "interpolate", path, "--seeds", "5", "--code", "1", "--frames", "6",
                   "--out", str(tmp_path / "w.gif"))[0] == 0
    expect_error(capsys, ["interpolate", path, "--seeds", "5,6", "--code", "1", "--out", str(tmp_path / "v.gif")],
                 "give one seed, not 2")


@pytest.mark.slow
def test_export_takes_the_codes_as_an_input(code_run, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    g = code_run.load_generator(device="cpu")
    path = export_run(code_run.path, "onnx", tmp_path / "g.onnx", output="float")
    meta = read_metadata(path)
    assert meta["inputs"] == ["z", "codes"] and meta["codes"][0] == {"type": "categorical", "values": 4}
    z, values = torch.randn(3, g.z_dim), torch.tensor([[1.0, 0.2, -0.5], [3.0, 1.0, 0.0], [0.0, -1.0, 0.7]])
    got = ort.InferenceSession(str(path)).run(None, {"z": z.numpy(), "codes": values.numpy()})[0]
    want = g(torch.cat([z, g.codes.encode(values)], 1)).numpy()
    assert np.abs(got - want).max() < 1e-4
    script = torch.jit.load(str(export_run(code_run.path, "torchscript", tmp_path / "g.pth", output="float")))
    assert torch.equal(script(z, values), torch.from_numpy(want))


def test_the_report_shows_a_sweep_of_each_code(code_run):
    html = code_run.report.read_text()
    assert "Code sweep: code 0 (categorical, 4 values)" in html and "--code 2" in html


# -- the measurements ------------------------------------------------------------------------------------------

def test_slant_and_stroke_width_of_drawn_bars():
    img = np.zeros((3, 1, 28, 28), np.uint8)
    img[0, 0, 4:24, 12:15] = 255  # upright, 3 wide
    img[1, 0, 4:24, 11:17] = 255  # upright, 6 wide
    for y in range(4, 24):
        img[2, 0, y, 20 - (y - 4) // 2:23 - (y - 4) // 2] = 255  # leaning right
    s, w = slant(img), stroke_width(img)
    assert abs(s[0]) < 1e-9 and abs(s[1]) < 1e-9 and s[2] < -0.3
    assert 2.5 < w[0] < 4.5 and w[1] > 1.8 * w[0]


class Planted(Generator):
    """A stand-in generator that draws what its codes say: the digit of a fixed permutation of code 0, tilted by
    code 1 and as thick as code 2 says (images of MNIST's size)."""

    family = "planted"

    def __init__(self, digits: np.ndarray) -> None:
        super().__init__()
        self.z_dim, self.channels, self.resolution, self.num_classes = 4, 1, 28, 0
        self.codes = Codes.parse(["cat:10", "cont:2"])
        self.digits = torch.from_numpy(digits).float() / 127.5 - 1  # [10, 1, 28, 28], class k at index k
        self.perm = torch.tensor([3, 1, 4, 0, 5, 9, 2, 6, 8, 7])
        self.anchor = nn.Parameter(torch.zeros(1))

    def forward(self, z, y=None):
        values = self.codes.decode(z[:, 4:])
        out = self.digits[self.perm[values[:, 0].long()]].clone()
        yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
        bars = []
        for tilt, width in values[:, 1:].tolist():
            centre = 14 + tilt * 4 * (yy - 14) / 10
            bars.append(((xx - centre).abs() <= 1 + (width + 1) * 1.5) & (yy > 4) & (yy < 24))
        return torch.where(torch.stack(bars)[:, None], torch.ones_like(out), -torch.ones_like(out)) \
            if getattr(self, "bars", False) else out


@pytest.mark.slow  # trains (once) MNIST's classifier
def test_the_categorical_code_is_matched_to_the_classes(mnist_dir):
    data = ganforge.load_dataset("mnist", mnist_dir, "test")
    digits = np.stack([data.images[np.flatnonzero(data.labels == k)[0]] for k in range(10)])
    extractor = make_extractor("classifier", "mnist", mnist_dir, 28)
    g = Planted(digits)
    assert categorical_agreement(g, extractor, n=200) == pytest.approx(1.0, abs=0.1)  # a permutation is found


def test_continuous_codes_move_slant_and_width():
    g = Planted(np.zeros((10, 1, 28, 28), np.uint8))
    g.bars = True
    out = continuous_correlations(g, seeds=20, steps=7)
    assert out["code_slant_code"] == 1 and out["code_slant_rho"] > 0.95
    assert out["code_width_code"] == 2 and out["code_width_rho"] > 0.95
    assert abs(out["code1_width_rho"]) < 0.5 and abs(out["code2_slant_rho"]) < 0.5


class PlantedWithLabels(Planted):
    """Planted bars, and a generator that takes a class: each class adds its own width to the bar."""

    def __init__(self) -> None:
        super().__init__(np.zeros((10, 1, 28, 28), np.uint8))
        self.num_classes, self.bars = 3, True

    def forward(self, z, y=None):
        values = self.codes.decode(z[:, 4:])
        values[:, 2] += 0.6 * y.float()  # each class is thicker than the one before
        return super().forward(torch.cat([z[:, :4], self.codes.encode(values)], dim=1))


def test_a_sweep_holds_the_class_of_a_generator_that_takes_one():
    out = continuous_correlations(PlantedWithLabels(), seeds=12, steps=7)
    # Only the code moves along a sweep (0.92; whole-pixel widths tie). A class changing along it gives 0.77.
    assert out["code_width_code"] == 2 and out["code_width_rho"] > 0.9


def test_every_codes_key_is_there_when_some_do_not_apply(tmp_path):
    run = ganforge.train(tiny_config(tmp_path, steps=4, codes=["cat:3"], eval_every=4, eval_n=60,
                                     eval_metrics=["codes"]), progress=False)
    (row,) = run.evaluation_rows()
    assert 0 <= row["code_accuracy"] <= 1 and row["code_slant_rho"] is None and row["code_width_rho"] is None


def test_evaluate_reports_the_codes(code_run, capsys):
    code, out, err = run_cli(capsys, "evaluate", str(code_run.path), "--metrics", "codes", "--features", "classifier",
                             "--n", "100")
    assert code == 0, err
    recorded = json.loads(code_run.evaluation.read_text())["classifier"]
    assert 0 <= recorded["code_accuracy"] <= 1 and "code_accuracy" in out
