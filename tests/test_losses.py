import math

import pytest
import torch

from ganforge.losses import LOSSES, gradient_penalty, mode_seeking_penalty, r1_penalty


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


REAL, FAKE = [2.0, -1.0], [0.5, -3.0]


def test_bce_matches_hand_computed_values():
    loss = LOSSES["bce"]()
    r, f = torch.tensor(REAL), torch.tensor(FAKE)
    # D: -log σ(r) averaged + -log(1 - σ(f)) averaged.
    d = sum(-math.log(sigmoid(x)) for x in REAL) / 2 + sum(-math.log(1 - sigmoid(x)) for x in FAKE) / 2
    g = sum(-math.log(sigmoid(x)) for x in FAKE) / 2  # non-saturating
    assert loss.discriminator(r, f).item() == pytest.approx(d, abs=1e-6)
    assert loss.generator(f).item() == pytest.approx(g, abs=1e-6)
    # Same as PyTorch's BCE on probabilities, the tutorials' formulation.
    bce = torch.nn.functional.binary_cross_entropy
    ref = bce(torch.sigmoid(r), torch.ones(2)) + bce(torch.sigmoid(f), torch.zeros(2))
    assert loss.discriminator(r, f).item() == pytest.approx(ref.item(), abs=1e-6)


def test_label_smoothing_targets_one_minus_s():
    loss = LOSSES["bce"](label_smoothing=0.1)
    r, f = torch.tensor(REAL), torch.tensor(FAKE)
    d = sum(-(0.9 * math.log(sigmoid(x)) + 0.1 * math.log(1 - sigmoid(x))) for x in REAL) / 2
    d += sum(-math.log(1 - sigmoid(x)) for x in FAKE) / 2
    assert loss.discriminator(r, f).item() == pytest.approx(d, abs=1e-6)


def test_hinge_wasserstein_least_squares():
    r, f = torch.tensor(REAL), torch.tensor(FAKE)
    hinge = LOSSES["hinge"]()
    assert hinge.discriminator(r, f).item() == pytest.approx((0 + 2) / 2 + (1.5 + 0) / 2)
    assert hinge.generator(f).item() == pytest.approx(1.25)
    w = LOSSES["wgan-gp"]()
    assert w.discriminator(r, f).item() == pytest.approx(-1.25 - 0.5)
    ls = LOSSES["lsgan"]()
    assert ls.discriminator(r, f).item() == pytest.approx(0.5 * ((1 + 4) / 2 + (0.25 + 9) / 2))
    assert ls.generator(f).item() == pytest.approx(0.5 * (0.25 + 16) / 2)


def test_penalties_on_a_linear_critic():
    # D(x) = sum(w * x): the input gradient is w everywhere, so both penalties are known exactly.
    w = torch.full((1, 2, 2), 0.5)

    def critic(x, labels=None):
        return (x * w).flatten(1).sum(1)

    real, fake = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
    norm = w.norm().item()  # 1.0
    assert gradient_penalty(critic, real, fake).item() == pytest.approx((norm - 1) ** 2, abs=1e-6)
    x = real.clone().requires_grad_(True)
    assert r1_penalty(critic(x), x).item() == pytest.approx(norm**2, abs=1e-6)


def test_penalties_take_one_gradient_norm_per_pack():
    # A critic of packs of 2: D(pair) = sum(w * pair), so each pack's input gradient is w twice over and
    # its squared norm 2·|w|²; per image it would be |w|², and the penalties below would differ.
    from ganforge.models.base import pack_images

    w = torch.full((1, 2, 2), 0.5)  # |w|² = 1

    def critic(x, labels=None):
        return (pack_images(x, 2) * w.repeat(2, 1, 1)).flatten(1).sum(1)

    real, fake = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
    x = real.clone().requires_grad_(True)
    logits = critic(x)
    assert logits.shape == (2,)
    assert r1_penalty(logits, x).item() == pytest.approx(2.0, abs=1e-6)
    assert gradient_penalty(critic, real, fake).item() == pytest.approx((2**0.5 - 1) ** 2, abs=1e-6)


def test_mode_seeking_penalty_is_latent_over_image_distance():
    z = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [1.0, 3.0]])  # pairs (0, 2) and (1, 3): |dz| = 2, 1
    fake = torch.zeros(4, 1, 2, 2)
    fake[2] = 4.0  # pair (0, 2): image distance 4, ratio 2
    fake[3] = fake[1] + 0.5  # pair (1, 3): image distance 0.5, ratio 0.5
    assert mode_seeking_penalty(fake, z).item() == pytest.approx(1 / 1.25, rel=1e-4)
    # G mapping every z to one image: the penalty is huge.
    assert mode_seeking_penalty(torch.zeros(4, 1, 2, 2), z).item() > 1e4


def test_relativistic_pairing_matches_hand_computed_values():
    rp = LOSSES["rpgan"]()
    r, f = torch.tensor(REAL), torch.tensor(FAKE)
    softplus = lambda x: math.log1p(math.exp(x))  # noqa: E731
    assert rp.relativistic
    assert rp.discriminator(r, f).item() == pytest.approx((softplus(0.5 - 2) + softplus(-3 + 1)) / 2, abs=1e-6)
    assert rp.generator(f, r).item() == pytest.approx((softplus(2 - 0.5) + softplus(-1 + 3)) / 2, abs=1e-6)
    # Extra negatives (mismatched labels) are paired with the reals in turn.
    extra = torch.tensor(FAKE + [1.0])
    assert rp.discriminator(r, extra).item() == pytest.approx(
        (softplus(0.5 - 2) + softplus(-3 + 1) + softplus(1 - 2)) / 3, abs=1e-6)


def linear_critic(w):
    def critic(x, labels=None):
        return (x * w).flatten(1).sum(1)

    return critic


def test_objective_adds_its_terms_only_when_due():
    from ganforge import Config
    from ganforge.losses import R1, R2, make_objective

    w = torch.full((1, 2, 2), 0.5)  # ||∇D||² = 1 everywhere
    critic = linear_critic(w)
    real, fake = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
    pool, rng = torch.tensor([0]), torch.Generator()
    cfg = Config(loss="rpgan", r1_gamma=2.0, r1_every=4)
    objective = make_objective(cfg, pool, rng, takes_labels=False)
    assert [type(t) for t in objective.terms] == [R1, R2]  # R3GAN: the pairing with R1 and R2
    plain, _ = make_objective(Config(loss="rpgan"), pool, rng, False).discriminator(
        critic, lambda x: x, real, None, fake, None, step=0)
    lazy, stats = objective.discriminator(critic, lambda x: x, real, None, fake, None, step=4)
    # Due at step 4: γ/2 · every · (E||∇D(real)||² + E||∇D(fake)||²) = 1 · 4 · 2.
    assert lazy.item() == pytest.approx(plain.item() + 8.0, abs=1e-5)
    skipped, _ = objective.discriminator(critic, lambda x: x, real, None, fake, None, step=5)
    assert skipped.item() == pytest.approx(plain.item(), abs=1e-6)
    assert set(stats) == {"loss_d", "d_real", "d_fake"} and not real.requires_grad
    loss_g, g_stats = objective.generator(critic, lambda x: x, fake, None, torch.zeros(4, 2), real, None)
    assert set(g_stats) == {"loss_g"}
    assert loss_g.item() == pytest.approx(LOSSES["rpgan"]().generator(critic(fake), critic(real)).item())


def test_each_loss_brings_its_terms():
    from ganforge import Config
    from ganforge.losses import GradientPenalty, Mismatch, ModeSeeking, make_objective

    pool = torch.tensor([1, 3])

    def terms(**options):
        return [type(t) for t in make_objective(Config(**options), pool, torch.Generator(), True).terms]

    assert terms(loss="wgan-gp") == [GradientPenalty]
    assert terms(loss="hinge") == terms(loss="rpgan") == []
    assert terms(mode_seeking=0.5, mismatch=0.5) == [ModeSeeking]  # mismatch: --conditional runs only
    assert terms(mode_seeking=0.5, mismatch=0.5, conditional=True) == [ModeSeeking, Mismatch]
    assert make_objective(Config(mode_seeking=0.5), pool, torch.Generator(), True).pairs_latents
