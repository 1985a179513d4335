"""latent.py: seeds -> z, lerp/slerp, paths, arithmetic, decoding (on toy generators with known answers)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.codes import Codes
from ganforge.errors import ConfigError
from ganforge.latent import (
    arithmetic,
    class_sweep,
    interpolation,
    latent_arithmetic,
    latents_for_seeds,
    lerp,
    load_latents,
    path,
    perturb,
    pick_latents,
    slerp,
)
from ganforge.models import Generator, make_latents
from ganforge.models.conditioning import LabelEmbedding


class LinearGenerator(Generator):
    """image = W [z, e], no nonlinearity: decoding commutes with averaging, so answers are known."""

    family = "toy"

    def __init__(self, z_dim: int = 6, num_classes: int = 0, embed_dim: int = 3) -> None:
        super().__init__(z_dim=z_dim, num_classes=num_classes, embed_dim=embed_dim)
        self.z_dim, self.channels, self.resolution, self.num_classes = z_dim, 1, 2, num_classes
        self.label = LabelEmbedding(num_classes, embed_dim) if num_classes else None
        width = z_dim + (embed_dim if num_classes else 0)
        self.net = torch.nn.Linear(width, 4, bias=False)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.label(z, y) if self.label is not None else z)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h).view(-1, 1, 2, 2)


@pytest.fixture
def toy() -> LinearGenerator:
    torch.manual_seed(0)
    return LinearGenerator().eval()


@pytest.fixture
def toy_cond() -> LinearGenerator:
    torch.manual_seed(0)
    return LinearGenerator(num_classes=4).eval()


# -- seeds and files --------------------------------------------------------------------------------

def test_a_seed_names_one_latent_wherever_it_appears():
    z = latents_for_seeds([5, 3, 5], 10)
    assert z.shape == (3, 10)
    assert torch.equal(z[0], z[2])
    assert torch.equal(z[1], make_latents(1, 10, 3)[0])
    assert not torch.equal(z[0], z[1])


def test_load_latents_picks_rows_and_checks_them(tmp_path):
    z = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.savez(tmp_path / "g.latents.npz", z=z)
    got = load_latents(tmp_path / "g.latents.npz", [3, 0], z_dim=3)
    assert torch.equal(got, torch.from_numpy(z[[3, 0]]))
    with pytest.raises(ConfigError, match="no tile 4"):
        load_latents(tmp_path / "g.latents.npz", [4])
    with pytest.raises(ConfigError, match="takes 5"):
        load_latents(tmp_path / "g.latents.npz", [0], z_dim=5)
    np.savez(tmp_path / "other.npz", images=z)
    with pytest.raises(ConfigError, match="no 'z' array"):
        load_latents(tmp_path / "other.npz", [0])
    (tmp_path / "junk.npz").write_text("not an npz")
    with pytest.raises(ConfigError, match="cannot read"):
        load_latents(tmp_path / "junk.npz", [0])


def test_pick_latents_refuses_an_empty_list():
    with pytest.raises(ConfigError, match="empty"):
        pick_latents([], 4)


# -- lerp and slerp ---------------------------------------------------------------------------------

def test_end_points_are_exact():
    a, b = make_latents(2, 100, seed=1)
    for f in (lerp, slerp):
        assert torch.equal(f(a, b, 0.0), a)
        assert torch.equal(f(a, b, 1.0), b)


def test_slerp_keeps_the_norm_where_lerp_shrinks_it():
    a, b = make_latents(2, 100, seed=2)
    b = b * (a.norm() / b.norm())  # equal norms
    for t in (0.25, 0.5, 0.75):
        assert abs(slerp(a, b, t).norm().item() - a.norm().item()) < 1e-4
    # Independent Gaussians are nearly orthogonal: the middle of a lerp has norm ~ |a| / sqrt(2).
    assert lerp(a, b, 0.5).norm().item() < 0.8 * a.norm().item()


def test_slerp_moves_at_constant_angular_speed():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    mid = slerp(a, b, 1 / 3)
    assert abs(mid[0].item() - np.cos(np.pi / 6)) < 1e-6
    assert abs(mid[1].item() - np.sin(np.pi / 6)) < 1e-6


def test_slerp_falls_back_to_lerp_for_nearly_parallel_vectors():
    a = make_latents(1, 50, seed=3)[0]
    for b in (a.clone(), a * 2, a + 1e-7, -a):
        out = slerp(a, b, 0.5)
        assert torch.isfinite(out).all()
        assert torch.allclose(out, lerp(a, b, 0.5), atol=1e-6)
    zero = torch.zeros(50)
    assert torch.isfinite(slerp(zero, a, 0.5)).all()


def test_slerp_is_batched_over_rows():
    a, b = make_latents(3, 8, seed=4), make_latents(3, 8, seed=5)
    t = torch.tensor([[0.0], [0.5], [1.0]])
    out = slerp(a, b, t)
    assert torch.equal(out[0], a[0]) and torch.equal(out[2], b[2])
    assert torch.allclose(out[1], slerp(a[1], b[1], 0.5), atol=1e-6)


# -- paths ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["slerp", "lerp"])
def test_a_loop_has_the_frame_count_and_passes_through_every_point(method):
    points = make_latents(3, 16, seed=6)
    frames = path(points, 12, method, loop=True)
    assert frames.shape == (12, 16)
    for i in range(3):  # 12 frames over 3 segments: a waypoint every 4th frame
        assert torch.equal(frames[4 * i], points[i])
    # The loop closes: the step from the last frame back to the first is like any other step.
    steps = (frames.roll(-1, 0) - frames).norm(dim=1)
    assert steps.max().item() < 2 * steps.min().item()


def test_an_open_path_starts_and_ends_on_the_first_and_last_points():
    points = make_latents(4, 16, seed=7)
    frames = path(points, 10, "slerp", loop=False)
    assert frames.shape == (10, 16)
    assert torch.equal(frames[0], points[0]) and torch.equal(frames[-1], points[-1])


def test_a_code_model_s_path_slerps_its_noise_and_mixes_its_codes():
    codes = Codes.parse(["cat:4", "cont:1"])
    points = make_latents(3, 8, 0, codes=codes)  # noise (8), then one-hot of 4, then 1 continuous value
    frames = path(points, 12, "slerp", noise_dim=8)
    one_hot = frames[:, 8:12]
    assert torch.allclose(one_hot.sum(1), torch.ones(12)) and (one_hot >= 0).all()  # always a mixture
    assert torch.equal(frames[:, :8], path(points[:, :8], 12, "slerp"))  # the noise as if alone
    assert torch.allclose(frames[:, 8:], path(points[:, 8:], 12, "lerp"))


def test_path_errors():
    with pytest.raises(ConfigError, match="at least 2 latents"):
        path(make_latents(1, 4), 8)
    with pytest.raises(ConfigError, match="--frames"):
        path(make_latents(2, 4), 1)
    with pytest.raises(ConfigError, match="--method"):
        path(make_latents(2, 4), 4, method="cubic")


# -- arithmetic -------------------------------------------------------------------------------------

def test_arithmetic_adds_signed_group_means():
    a, b, c = make_latents(3, 5, 0), make_latents(2, 5, 1), make_latents(4, 5, 2)
    means, result = arithmetic([(1, a), (-1, b), (1, c)])
    assert torch.allclose(means, torch.stack([a.mean(0), b.mean(0), c.mean(0)]))
    assert torch.allclose(result, a.mean(0) - b.mean(0) + c.mean(0), atol=1e-6)
    with pytest.raises(ConfigError, match="at least one"):
        arithmetic([])
    with pytest.raises(ConfigError, match="sign"):
        arithmetic([(2, a)])


def test_arithmetic_on_a_linear_generator_gives_the_known_image(toy):
    groups = [(1, latents_for_seeds([1, 2, 3], 6)), (-1, latents_for_seeds([4, 5, 6], 6)),
              (1, latents_for_seeds([7, 8, 9], 6))]
    out = latent_arithmetic(toy, groups, variations=3, scale=0.1, seed=0)
    # Linear G: G(mean z) = mean G(z), so the result is the signed sum of the exemplars' mean images.
    expected = sum(s * toy(z).mean(0) for s, z in groups)
    assert torch.allclose(out.result[0], expected, atol=1e-5)
    assert out.result.shape == (4, 1, 2, 2) and out.z.shape == (4, 6)
    assert [len(e) for e in out.exemplars] == [3, 3, 3] and out.means.shape == (3, 1, 2, 2)
    assert torch.allclose(out.z[1:], perturb(out.z[0], 3, 0.1, 0))
    noise = (out.z[1:] - out.z[0]).std().item()
    assert abs(noise - 0.1) < 0.05


def test_conditional_decoding_needs_a_class_in_range(toy_cond):
    groups = [(1, latents_for_seeds([1], 6))]
    with pytest.raises(ConfigError, match="conditional"):
        latent_arithmetic(toy_cond, groups)
    with pytest.raises(ConfigError, match="out of range"):
        latent_arithmetic(toy_cond, groups, label=4)
    out = latent_arithmetic(toy_cond, groups, label=2, variations=0)
    y = torch.tensor([2])
    assert torch.allclose(out.result, toy_cond(groups[0][1], y), atol=1e-6)


# -- interpolation and sweeps on a generator -------------------------------------------------------

def test_interpolation_decodes_the_path(toy):
    z = latents_for_seeds([1, 2], 6)
    images = interpolation(toy, z, 6, "lerp", loop=False)
    assert images.shape == (6, 1, 2, 2)
    assert torch.allclose(images[0], toy(z[:1])[0]) and torch.allclose(images[-1], toy(z[1:])[0])
    with pytest.raises(ConfigError, match="unconditional"):
        interpolation(toy, z, 6, labels=[1])


def test_class_morph_goes_through_the_label_embedding(toy_cond):
    z = latents_for_seeds([1], 6)
    images = interpolation(toy_cond, z, 5, "lerp", loop=False, labels=[0, 3])
    assert torch.allclose(images[0], toy_cond(z, torch.tensor([0]))[0], atol=1e-6)
    assert torch.allclose(images[-1], toy_cond(z, torch.tensor([3]))[0], atol=1e-6)
    # Linear G and lerp: the middle frame is the average of the two classes' images.
    mid = (toy_cond(z, torch.tensor([0])) + toy_cond(z, torch.tensor([3]))) / 2
    assert torch.allclose(images[2], mid[0], atol=1e-6)
    with pytest.raises(ConfigError, match="one class per seed"):
        interpolation(toy_cond, latents_for_seeds([1, 2, 3], 6), 5, labels=[0, 1])
    with pytest.raises(ConfigError, match="out of range"):
        interpolation(toy_cond, z, 5, labels=[0, 9])
    with pytest.raises(ConfigError, match="conditional"):
        interpolation(toy_cond, latents_for_seeds([1, 2], 6), 5)


def test_class_sweep_holds_z_per_row_and_changes_class_per_column(toy_cond, toy):
    z = latents_for_seeds([1, 2], 6)
    images = class_sweep(toy_cond, z, [3, 1])
    assert images.shape == (4, 1, 2, 2)
    assert torch.allclose(images[1], toy_cond(z[:1], torch.tensor([1]))[0], atol=1e-6)  # row 0, column 1
    assert torch.allclose(images[2], toy_cond(z[1:], torch.tensor([3]))[0], atol=1e-6)  # row 1, column 0
    assert class_sweep(toy_cond, z).shape[0] == 8
    with pytest.raises(ConfigError, match="unconditional"):
        class_sweep(toy, z)
    with pytest.raises(ConfigError, match="out of range"):
        class_sweep(toy_cond, z, [4])
