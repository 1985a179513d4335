"""Adversarial objectives: a loss on D's logits and the regularisers that go with it, as one object.

The trainer asks an ``Objective`` for D's loss and G's loss on a batch and never branches on a loss or an
option name. An ``AdversarialLoss`` turns logits into the two players' losses; a ``Term`` adds a penalty
to one of them (gradient penalty, R1, R2, mode seeking, InfoGAN's information) or shows D more negatives
(mismatched labels).
``LOSSES`` maps each ``--loss`` name to its class, whose ``build`` adds the terms it always brings; a new
loss is a class and an entry there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from .codes import Codes
    from .config import Config

# D: (images, labels) -> logits (B,); with codes=True (a code model's D) -> (logits, Q's reading of the codes)
Critic = Callable[..., Any]
View = Callable[[torch.Tensor], torch.Tensor]  # what D sees of an image batch (augmentation, noise)


# -- losses on logits ----------------------------------------------------------------------------------

class AdversarialLoss:
    """D's and G's losses from D's logits; ``output`` is the mean D output that metrics.jsonl logs as
    ``d_real``/``d_fake``, in this loss's own units, and the alarm bounds are in those units."""

    name = ""
    relativistic = False  # G's loss compares fakes with reals, so it needs D's logits on real images too
    saturated: tuple[float, float] | None = None  # alarm: d_real above the first while d_fake is below the second
    failing: tuple[float, float] | None = None  # alarm: d_real below the first while d_fake is above the second
    output_range: tuple[float, float] | None = None  # bounds of ``output``, where it has them (the report's axis)

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def generator(self, fake: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def output(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.mean()

    @classmethod
    def build(cls, config: Config) -> tuple[AdversarialLoss, list[Term]]:
        """This loss for ``config``, and the terms it always brings."""
        return cls(), []


class NonSaturatingBCE(AdversarialLoss):
    """Goodfellow et al. (2014) with the non-saturating G loss, on logits (BCEWithLogits: stable).

    ``label_smoothing`` s makes the real target 1 - s (one-sided, Salimans et al. 2016). D's output is
    logged as a probability, D(x) and D(G(z)) as in the articles.
    """

    name = "bce"
    saturated = (0.99, 0.01)
    failing = (0.2, 0.8)
    output_range = (0.0, 1.0)  # probabilities

    def __init__(self, label_smoothing: float = 0.0) -> None:
        self.real_target = 1.0 - label_smoothing

    @classmethod
    def build(cls, config: Config) -> tuple[AdversarialLoss, list[Term]]:
        return cls(config.label_smoothing), []

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        # BCE(x, t) = softplus(x) - t·x; for t = 1 this is softplus(-x).
        real_term = F.softplus(real) - self.real_target * real
        return real_term.mean() + F.softplus(fake).mean()

    def generator(self, fake: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
        return F.softplus(-fake).mean()

    def output(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits).mean()


class Hinge(AdversarialLoss):
    """Lim & Ye (2017), as in SAGAN/BigGAN. Saturated: on average both margins are met, so D's loss is ~0."""

    name = "hinge"
    saturated = (1.0, -1.0)
    failing = (-1.0, 1.0)

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()

    def generator(self, fake: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
        return -fake.mean()


class Wasserstein(AdversarialLoss):
    """Arjovsky et al. (2017), with a gradient penalty (Gulrajani et al. 2017). The critic's values have no
    fixed scale, so no saturation alarm applies."""

    name = "wgan-gp"

    @classmethod
    def build(cls, config: Config) -> tuple[AdversarialLoss, list[Term]]:
        return cls(), [GradientPenalty(config.gp_weight)]

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return fake.mean() - real.mean()

    def generator(self, fake: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
        return -fake.mean()


class LeastSquares(AdversarialLoss):
    """Mao et al. (2017), targets real = 1, fake = 0."""

    name = "lsgan"
    saturated = (0.99, 0.01)
    failing = (0.2, 0.8)

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((real - 1.0).square().mean() + fake.square().mean())

    def generator(self, fake: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
        return 0.5 * (fake - 1.0).square().mean()


class RelativisticPairing(AdversarialLoss):
    """RpGAN (Jolicoeur-Martineau 2019; Huang et al. 2024, R3GAN): each real image is paired with a fake and
    D learns to score the real one higher, ``softplus(D(fake) - D(real))``; G the reverse. R3GAN adds R1 and
    R2 (``--r1-gamma`` weighs both), with which the pairing provably converges locally. Negatives beyond the batch
    (mismatched labels) are paired with the reals in turn."""

    name = "rpgan"
    relativistic = True

    @classmethod
    def build(cls, config: Config) -> tuple[AdversarialLoss, list[Term]]:
        return cls(), [R2(config.r1_gamma, config.r1_every)] if config.r1_gamma > 0 else []

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return F.softplus(fake - _paired(real, len(fake))).mean()

    def generator(self, fake: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
        assert real is not None, "a relativistic loss needs D's logits on real images"
        return F.softplus(real - fake).mean()


def _paired(real: torch.Tensor, n: int) -> torch.Tensor:
    """``real`` repeated in turn to length ``n``."""
    return real if n == len(real) else real[torch.arange(n, device=real.device) % len(real)]


# -- penalties ---------------------------------------------------------------------------------------

def gradient_penalty(discriminator: Critic, real: torch.Tensor, fake: torch.Tensor,
                     labels: torch.Tensor | None = None) -> torch.Tensor:
    """WGAN-GP: E[(||∇D(x̂)||₂ - 1)²] at random points x̂ between real and fake images."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    out = discriminator(mixed, labels)
    (grad,) = torch.autograd.grad(out.sum(), mixed, create_graph=True)
    return (grad.reshape(len(out), -1).norm(2, dim=1) - 1.0).square().mean()  # one norm per score (a pack)


def r1_penalty(logits: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): E[||∇D(x)||²] over the images ``inputs`` (which must require grad) that
    gave ``logits``. On real images this is R1; on fakes it is R2."""
    (grad,) = torch.autograd.grad(logits.sum(), inputs, create_graph=True)
    return grad.reshape(len(logits), -1).square().sum(1).mean()  # per score: a pack's images together


def mode_seeking_penalty(fake: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Mao et al. 2019 (MSGAN): 1 / (image distance / latent distance) over pairs (i, i + B/2), small when
    different latents give different images; minimising it keeps G from mapping every z to one image."""
    half = fake.shape[0] // 2
    d_img = (fake[:half] - fake[half:2 * half]).abs().flatten(1).mean(1)
    d_z = (z[:half] - z[half:2 * half]).abs().mean(1)
    return 1.0 / ((d_img / d_z).mean() + 1e-5)


# -- terms: what the regularisers add ---------------------------------------------------------------------

@dataclass
class DBatch:
    """What one D update has at hand. ``real``/``fake`` are D's raw inputs (before the view); each requires
    grad when a term asked for it."""

    D: Critic
    real: torch.Tensor
    real_y: torch.Tensor | None
    fake: torch.Tensor
    fake_y: torch.Tensor | None
    real_in: torch.Tensor  # the view of ``real`` that D scored
    real_logits: torch.Tensor
    fake_logits: torch.Tensor
    z: torch.Tensor | None = None  # the fakes' latents
    fake_q: torch.Tensor | None = None  # Q's reading of the fakes' codes (code models)


@dataclass
class GBatch:
    """What one G update has at hand: the fakes, their latents and Q's reading of their codes (code models)."""

    fake: torch.Tensor
    z: torch.Tensor
    q: torch.Tensor | None = None


class Term:
    """A regulariser. Lazy ones (``every`` > 1) run one step in ``every``, their weight scaled up to match."""

    every = 1
    needs_real_grad = False  # D's input gradient on real images
    needs_fake_grad = False  # ... on fakes
    needs_codes = False  # Q's reading of the fakes' codes
    pairs_latents = False  # latents (i, i + B/2) must share their label

    def active(self, step: int) -> bool:
        return step % self.every == 0

    def negatives(self, b: DBatch) -> torch.Tensor | None:
        """Extra logits D must call fake (joined to the fakes' logits in D's loss)."""
        return None

    def discriminator(self, b: DBatch) -> torch.Tensor | None:
        return None

    def generator(self, g: GBatch) -> torch.Tensor | None:
        return None


class GradientPenalty(Term):
    def __init__(self, weight: float) -> None:
        self.weight = weight

    def discriminator(self, b: DBatch) -> torch.Tensor:
        return self.weight * gradient_penalty(b.D, b.real, b.fake, b.real_y)


class R1(Term):
    """γ/2 E||∇D(x)||² on real images, every ``every`` steps (lazy regularisation, StyleGAN2)."""

    needs_real_grad = True

    def __init__(self, gamma: float, every: int) -> None:
        self.weight, self.every = gamma / 2 * every, every

    def discriminator(self, b: DBatch) -> torch.Tensor:
        return self.weight * r1_penalty(b.real_logits, b.real)


class R2(R1):
    """R1's penalty on the fakes (Roth et al. 2017, R3GAN)."""

    needs_real_grad, needs_fake_grad = False, True

    def discriminator(self, b: DBatch) -> torch.Tensor:
        return self.weight * r1_penalty(b.fake_logits, b.fake)


class ModeSeeking(Term):
    pairs_latents = True

    def __init__(self, weight: float) -> None:
        self.weight = weight

    def generator(self, g: GBatch) -> torch.Tensor:
        return self.weight * mode_seeking_penalty(g.fake, g.z)


class MutualInformation(Term):
    """InfoGAN (Chen et al. 2016): Q, a head on D, must read the codes back from the fakes G made of them. The
    term is in D's loss (it trains Q and D's body) and in G's (it trains G to keep its codes readable)."""

    needs_codes = True

    def __init__(self, codes: Codes, z_dim: int, cat_weight: float, cont_weight: float) -> None:
        self.codes, self.z_dim, self.cat, self.cont = codes, z_dim, cat_weight, cont_weight

    def loss(self, q: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        values = self.codes.decode(z[:, self.z_dim:])
        return self.codes.information_loss(q, values, self.cat, self.cont)

    def discriminator(self, b: DBatch) -> torch.Tensor:
        return self.loss(b.fake_q, b.z)

    def generator(self, g: GBatch) -> torch.Tensor:
        return self.loss(g.q, g.z)


class Mismatch(Term):
    """The first ``fraction`` of each real batch again, each image under a wrong label (shifted by 1..K-1
    within the training ``classes``): pairs D must learn to call fake (matching-aware D, Reed et al. 2016)."""

    def __init__(self, fraction: float, classes: torch.Tensor, rng: torch.Generator) -> None:
        self.fraction, self.classes, self.rng = fraction, classes, rng  # classes: sorted ids

    def negatives(self, b: DBatch) -> torch.Tensor:
        assert b.real_y is not None
        n = max(1, round(self.fraction * b.real_in.shape[0]))
        k = len(self.classes)
        pos = torch.searchsorted(self.classes, b.real_y[:n])  # label -> its index among the training classes
        shift = torch.randint(1, k, (n,), device=pos.device, generator=self.rng)
        return b.D(b.real_in[:n].detach(), self.classes[(pos + shift) % k])


# -- the objective ------------------------------------------------------------------------------------

class Objective:
    """An adversarial loss and its terms: what one D update and one G update minimise."""

    def __init__(self, loss: AdversarialLoss, terms: list[Term]) -> None:
        self.loss, self.terms = loss, terms
        self.pairs_latents = any(t.pairs_latents for t in terms)
        self.codes = any(t.needs_codes for t in terms)

    def set_r1_gamma(self, gamma: float) -> None:
        """The weight γ of the R1 and R2 penalties from now on (a schedule moves it)."""
        for t in self.terms:
            if isinstance(t, R1):
                t.weight = gamma / 2 * t.every

    def discriminator(self, D: Critic, view: View, real: torch.Tensor, real_y: torch.Tensor | None,
                      fake: torch.Tensor, fake_y: torch.Tensor | None, step: int, z: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """D's loss on real images and (detached) fakes of latents ``z``; returns it and the step's statistics."""
        active = [t for t in self.terms if t.active(step)]
        if any(t.needs_real_grad for t in active):
            real = real.detach().requires_grad_(True)
        fake = fake.detach()
        if any(t.needs_fake_grad for t in active):
            fake.requires_grad_(True)
        real_in = view(real)
        fake_logits, fake_q = self._scored(D, view(fake), fake_y)
        b = DBatch(D, real, real_y, fake, fake_y, real_in, D(real_in, real_y), fake_logits, z, fake_q)
        negatives = [b.fake_logits, *(x for t in active if (x := t.negatives(b)) is not None)]
        loss = self.loss.discriminator(b.real_logits, negatives[0] if len(negatives) == 1 else torch.cat(negatives))
        info = None
        for t in active:
            if (penalty := t.discriminator(b)) is not None:
                loss = loss + penalty
                info = penalty if t.needs_codes else info
        with torch.no_grad():
            stats = {"loss_d": loss.detach(), "d_real": self.loss.output(b.real_logits.detach()),
                     "d_fake": self.loss.output(b.fake_logits.detach())}
            if info is not None:
                stats["loss_info"] = info.detach()
        return loss, stats

    def _scored(self, D: Critic, x: torch.Tensor, y: torch.Tensor | None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """D's logits on ``x`` and, for a code model, Q's reading of their codes (one pass through D)."""
        if self.codes:
            return D(x, y, codes=True)
        return D(x, y), None

    def generator(self, D: Critic, view: View, fake: torch.Tensor, fake_y: torch.Tensor | None, z: torch.Tensor,
                  real: torch.Tensor, real_y: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """G's loss on its fakes (D's weights frozen by the caller)."""
        real_logits = None
        if self.loss.relativistic:
            with torch.no_grad():  # depends on D alone, which takes no gradient here
                real_logits = D(view(real.detach()), real_y)
        fake_logits, q = self._scored(D, view(fake), fake_y)
        loss = self.loss.generator(fake_logits, real_logits)
        g = GBatch(fake, z, q)
        for t in self.terms:
            if (penalty := t.generator(g)) is not None:
                loss = loss + penalty
        return loss, {"loss_g": loss.detach()}


# --loss NAME -> the loss class; ``build`` adds the terms it always brings.
LOSSES: dict[str, type[AdversarialLoss]] = {
    c.name: c for c in (NonSaturatingBCE, Hinge, Wasserstein, LeastSquares, RelativisticPairing)}


def make_objective(config: Config, classes: torch.Tensor, rng: torch.Generator, takes_labels: bool,
                   codes: Codes | None = None) -> Objective:
    """The objective a run trains with. ``classes``: the sorted training class ids (a tensor on the device);
    ``rng``: the run's generator for the random choices terms make; ``takes_labels``: G draws a given class;
    ``codes``: G's InfoGAN codes, which Q must read back."""
    loss, terms = LOSSES[config.loss].build(config)
    if config.r1_gamma > 0:
        terms = [R1(config.r1_gamma, config.r1_every), *terms]
    # Mode seeking keeps a label-taking G varied, but not a code model (labels or none): with codes it wrecked MNIST
    # at 300 s (FD 100 against 7.3 without; docs/codes.md).
    if config.mode_seeking > 0 and takes_labels and not codes:
        terms.append(ModeSeeking(config.mode_seeking))
    # --mismatch is for --conditional alone: it buys label fidelity with variety, which label assist does not want.
    if config.mismatch > 0 and config.conditional and len(classes) > 1:
        terms.append(Mismatch(config.mismatch, classes, rng))
    if codes:
        terms.append(MutualInformation(codes, config.z_dim, config.info_cat, config.info_cont))
    return Objective(loss, terms)
