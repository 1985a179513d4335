"""Adversarial losses on discriminator logits, and the gradient penalties that go with them.

Each loss is an object with two methods, so the training loop never branches on the loss's name:
``discriminator(real_logits, fake_logits)`` and ``generator(fake_logits)``, both returning scalars.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class AdversarialLoss:
    name = ""

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def generator(self, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class NonSaturatingBCE(AdversarialLoss):
    """Goodfellow et al. (2014) with the non-saturating G loss, on logits (BCEWithLogits: stable).

    ``label_smoothing`` s makes the real target 1 - s (one-sided, Salimans et al. 2016).
    """

    name = "bce"

    def __init__(self, label_smoothing: float = 0.0) -> None:
        self.real_target = 1.0 - label_smoothing

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        # BCE(x, t) = softplus(x) - t·x; for t = 1 this is softplus(-x).
        real_term = F.softplus(real) - self.real_target * real
        return real_term.mean() + F.softplus(fake).mean()

    def generator(self, fake: torch.Tensor) -> torch.Tensor:
        return F.softplus(-fake).mean()


class Hinge(AdversarialLoss):
    """Lim & Ye (2017), as in SAGAN/BigGAN."""

    name = "hinge"

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()

    def generator(self, fake: torch.Tensor) -> torch.Tensor:
        return -fake.mean()


class Wasserstein(AdversarialLoss):
    """Arjovsky et al. (2017); use with a gradient penalty (Gulrajani et al. 2017)."""

    name = "wgan-gp"

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return fake.mean() - real.mean()

    def generator(self, fake: torch.Tensor) -> torch.Tensor:
        return -fake.mean()


class LeastSquares(AdversarialLoss):
    """Mao et al. (2017), targets real = 1, fake = 0."""

    name = "lsgan"

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((real - 1.0).square().mean() + fake.square().mean())

    def generator(self, fake: torch.Tensor) -> torch.Tensor:
        return 0.5 * (fake - 1.0).square().mean()


def make_loss(name: str, label_smoothing: float = 0.0) -> AdversarialLoss:
    if name == "bce":
        return NonSaturatingBCE(label_smoothing)
    return {"hinge": Hinge, "wgan-gp": Wasserstein, "lsgan": LeastSquares}[name]()


def gradient_penalty(discriminator: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     labels: torch.Tensor | None = None) -> torch.Tensor:
    """WGAN-GP: E[(||∇D(x̂)||₂ - 1)²] at random points x̂ between real and fake images."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    mixed = (alpha * real + (1 - alpha) * fake.detach()).requires_grad_(True)
    out = discriminator(mixed, labels)
    (grad,) = torch.autograd.grad(out.sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1.0).square().mean()


def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): E[||∇D(x)||²] on real images; ``real`` must require grad."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.flatten(1).square().sum(1).mean()


def mode_seeking_penalty(fake: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Mao et al. 2019 (MSGAN): 1 / (image distance / latent distance) over pairs (i, i + B/2), small when
    different latents give different images; minimising it keeps G from mapping every z to one image."""
    half = fake.shape[0] // 2
    d_img = (fake[:half] - fake[half:2 * half]).abs().flatten(1).mean(1)
    d_z = (z[:half] - z[half:2 * half]).abs().mean(1)
    return 1.0 / ((d_img / d_z).mean() + 1e-5)
