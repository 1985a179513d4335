"""What every generator and discriminator shares: init kwargs kept as config, latents, chunked sampling."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..codes import Codes
from ..errors import ConfigError
from .conditioning import LabelEmbedding

# What a generator's label is, if it takes one: the class asked for (conditional), the class it learnt from
# although none is asked for (label-assisted), a k-means cluster of the training images (self-conditioned).
KINDS = ("conditional", "label-assisted", "self-conditioned", "unconditional")


def make_latents(n: int, z_dim: int, seed: int | torch.Generator | None = None, device: torch.device | str = "cpu",
                 codes: Codes | None = None) -> torch.Tensor:
    """Latents [n, z_dim (+ codes.dim)]: standard-normal noise, then the codes of a code model drawn from the same
    stream (``Codes``); the same seed gives the same latent on every device."""
    g = torch.Generator().manual_seed(seed) if isinstance(seed, int) else seed
    z = torch.randn(n, z_dim, generator=g)
    if codes:
        z = torch.cat([z, codes.encode(codes.sample(n, g))], dim=1)
    return z.to(device)


class GanModule(nn.Module):
    """Keeps the constructor's arguments, so ``type(m)(**m.init_kwargs)`` rebuilds the module."""

    family: str = ""

    def __init__(self, **init_kwargs: Any) -> None:
        super().__init__()
        self.init_kwargs = init_kwargs


class Generator(GanModule):
    z_dim: int  # the noise; the latent G reads is this, then its codes (``latent_dim``)
    codes: Codes = Codes()  # InfoGAN codes (--codes); none by default
    label: LabelEmbedding | None  # conditional models: class id -> vector joined to z
    num_classes: int  # 0 for unconditional
    channels: int
    resolution: int

    _classes: list[int] | None = None
    _kind: str | None = None
    # Self-conditioned (--clusters): its labels are k-means clusters of the training images, not classes,
    # and this holds the images of each cluster id 0..K-1; samples draw clusters in proportion to it.
    cluster_sizes: list[int] | None = None

    @property
    def kind(self) -> str:
        """One of ``KINDS``: set by the trainer and kept in every file that holds the generator."""
        if self._kind is not None:
            return self._kind
        if not self.takes_labels:
            return "unconditional"
        return "self-conditioned" if self.cluster_sizes is not None else "conditional"

    @kind.setter
    def kind(self, kind: str) -> None:
        if kind not in KINDS or (kind == "unconditional") == self.takes_labels:
            raise ConfigError(f"kind {kind!r} does not fit a generator of {self.num_classes} classes")
        self._kind = kind

    @property
    def takes_labels(self) -> bool:
        """Whether G draws a given class (a --conditional, --label-assist or --clusters run); see ``classes``."""
        return self.num_classes > 0

    @property
    def classes(self) -> list[int]:
        """The class ids G was trained on ([] when it takes no labels): all of 0..K-1, or a --classes subset.

        Sampling without labels cycles through these (``default_labels``), and labels outside them are refused.
        """
        if not self.takes_labels:
            return []
        return list(self._classes) if self._classes is not None else list(range(self.num_classes))

    @classes.setter
    def classes(self, ids: Sequence[int] | None) -> None:
        if ids is not None and (not ids or min(ids) < 0 or max(ids) >= self.num_classes):
            raise ConfigError(f"trained classes {list(ids)} do not fit a generator of {self.num_classes} classes")
        self._classes = None if ids is None else sorted(int(i) for i in ids)

    @property
    def class_weights(self) -> list[int] | None:
        """How often to draw each of ``classes``: a self-conditioned G's cluster sizes; None (evenly) otherwise."""
        return None if self.cluster_sizes is None else [self.cluster_sizes[c] for c in self.classes]

    def default_labels(self, n: int) -> torch.Tensor | None:
        """Labels for ``n`` samples when none are asked for: the trained classes in turn, or for a
        self-conditioned G its clusters in proportion to their sizes (None when G takes no labels)."""
        if not self.takes_labels:
            return None
        return torch.tensor(spread_classes(self.classes, n, self.class_weights), dtype=torch.long)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def latent_dim(self) -> int:
        """The width of G's latent: the noise, then its codes."""
        return self.z_dim + self.codes.dim

    def latents(self, n: int, seed: int | torch.Generator | None = None,
                device: torch.device | str | None = None) -> torch.Tensor:
        """``n`` latents of this generator (``make_latents``), on its device unless ``device`` says otherwise."""
        return make_latents(n, self.z_dim, seed, self.device if device is None else device, self.codes)

    def with_codes(self, z: torch.Tensor, fixed: dict[int, float]) -> torch.Tensor:
        """Latents ``z`` with the codes in ``fixed`` (index -> value) set, the noise and the other codes held."""
        if fixed and not self.codes:
            raise ConfigError("--code: this generator has no codes (trained without --codes)")
        return torch.cat([z[:, :self.z_dim], self.codes.set(z[:, self.z_dim:], fixed)], dim=1) if fixed else z

    def check_labels(self, labels: torch.Tensor | None, n: int) -> torch.Tensor | None:
        if not self.takes_labels:
            if labels is not None:
                raise ConfigError("this generator is unconditional: it takes no labels")
            return None
        if labels is None:
            raise ConfigError(f"this generator is conditional: give labels among its classes {class_list(self.classes)}")
        if labels.shape != (n,):
            raise ConfigError(f"expected {n} labels, got shape {tuple(labels.shape)}")
        untrained = sorted(set(labels.tolist()) - set(self.classes))
        if untrained:
            raise ConfigError(self.unknown_class(untrained[0]))
        return labels

    def unknown_class(self, label: int) -> str:
        """Why ``label`` cannot be drawn: outside the label space, or a class the run did not train on."""
        if not 0 <= label < self.num_classes:
            return f"class {label} is out of range; this generator has classes {class_list(self.classes)}"
        return f"class {label} is not one this generator was trained on ({class_list(self.classes)})"

    @torch.no_grad()
    def sample(self, n: int, labels: Sequence[int] | torch.Tensor | None = None, seed: int | None = None,
               z: torch.Tensor | None = None, batch_size: int = 1000) -> torch.Tensor:
        """Generate ``n`` images: float [n, C, H, W] in [-1, 1] on the model's device.

        ``z`` overrides ``seed``; for conditional models ``labels`` gives one class per image.
        """
        device = self.device
        z = self.latents(n, seed) if z is None else z.to(device)
        y = None if labels is None else torch.as_tensor(labels, dtype=torch.long, device=device)
        y = self.check_labels(y, n)
        chunks = []
        for i in range(0, n, batch_size):
            chunks.append(self(z[i:i + batch_size], None if y is None else y[i:i + batch_size]))
        return torch.cat(chunks) if chunks else torch.empty(0, self.channels, self.resolution, self.resolution)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """The network after conditioning: ``h`` is the latent, or [latent, label embedding] for conditional
        models."""
        raise NotImplementedError

    def class_embedding(self, labels: Sequence[int] | torch.Tensor) -> torch.Tensor:
        """The learned label-embedding vectors [n, embed_dim] of class ids (conditional models only)."""
        y = self.check_labels(torch.as_tensor(labels, dtype=torch.long, device=self.device), len(labels))
        return self.label.embed(y)

    def forward_embedded(self, z: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """G(z) with arbitrary label-embedding vectors ``e`` [B, embed_dim] in place of class ids.

        A point between two classes' embeddings morphs one class into the other.
        """
        if not self.takes_labels:
            raise ConfigError("this generator is unconditional: it has no label embedding")
        return self.decode(self.label.join_vectors(z, e))


def spread_classes(classes: Sequence[int], n: int, weights: Sequence[int] | None = None) -> list[int]:
    """``n`` class ids: ``classes`` in turn, or each class as often as its weight says, evenly interleaved.

    Smooth weighted round robin: every class gains its weight each turn, the richest is drawn and pays the
    total. Equal weights give the plain cycle; any first ``n`` draws are within one of ``n * w / sum(w)``.
    """
    if weights is None or len(set(weights)) == 1:
        return [classes[i % len(classes)] for i in range(n)]
    w = np.asarray(weights, np.int64)
    credit, total, out = np.zeros(len(w), np.int64), int(w.sum()), []
    for _ in range(n):
        credit += w
        i = int(credit.argmax())
        credit[i] -= total
        out.append(classes[i])
    return out


def class_list(classes: Sequence[int]) -> str:
    """``[0, 1, ..., 9]`` -> "0..9"; a subset is listed: "3, 5"."""
    if len(classes) > 2 and list(classes) == list(range(classes[0], classes[-1] + 1)):
        return f"{classes[0]}..{classes[-1]}"
    return ", ".join(map(str, classes))


class Discriminator(GanModule):
    num_classes: int
    pack: int = 1  # images per score (PacGAN); 1: one score per image
    # Each family sets ``self.q``: InfoGAN's Q head on D's last features for code models, else None.

    def features(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Activations of every hidden layer (for probes); subclasses implement it."""
        raise NotImplementedError

    def output(self, logit: torch.Tensor, h: torch.Tensor, codes: bool) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """What ``forward`` returns: the logits, and with ``codes`` also Q's reading of the codes from ``h``."""
        if not codes:
            return logit
        if self.q is None:
            raise ConfigError("this discriminator has no Q head: the run was trained without --codes")
        return logit, self.q(h)


def pack_images(x: torch.Tensor, n: int) -> torch.Tensor:
    """PacGAN (Lin et al. 2018): images (i·n .. i·n + n - 1) of ``x`` [B, C, H, W] side by side along channels,
    [B/n, n·C, H, W], so that D scores each group of ``n`` as one sample. A G that covers few modes makes packs
    of look-alikes, which no pack of real images is; ``n`` 1 returns ``x``."""
    if n == 1:
        return x
    b, c, h, w = x.shape
    if b % n:
        raise ConfigError(f"a discriminator of packs of {n} images got a batch of {b}, which does not split into packs")
    return x.reshape(b // n, n * c, h, w)


def minibatch_stddev(h: torch.Tensor, group: int) -> torch.Tensor:
    """Karras et al. 2018: append one feature, the spread of h across each group of ``group`` images.

    A generator that makes the same image twice gives a group a spread near 0, which D then sees; that
    is a signal no single image carries. ``h`` is [B, C] or [B, C, H, W]; the result has C + 1 features
    (``group`` 0: ``h`` unchanged).
    """
    if not group:
        return h
    b = h.shape[0]
    g = math.gcd(b, group)  # a group size that divides the batch (a last, smaller batch may not split by 4)
    spread = h.reshape(g, b // g, -1).float().var(0, unbiased=False).add(1e-8).sqrt().mean(1)  # (B/g,)
    spread = spread.to(h.dtype).repeat(g)  # image i belongs to group i % (B/g)
    extra = spread.view(b, *([1] * (h.ndim - 1))).expand(b, 1, *h.shape[2:])
    return torch.cat([h, extra], dim=1)


def apply_spectral_norm(module: nn.Module, skip: tuple[str, ...] = ("q",)) -> None:
    """Spectral normalisation (Miyato et al. 2018) on every conv and linear layer of ``module``, but those under
    the children named in ``skip``: InfoGAN's Q head is no critic, and bounding it would cap how sure it can be
    of a code."""
    from torch.nn.utils.parametrizations import spectral_norm

    for name, child in list(module.named_children()):
        if name in skip:
            continue
        if isinstance(child, nn.Conv2d | nn.Linear):
            setattr(module, name, spectral_norm(child))
        else:
            apply_spectral_norm(child, ())


def dcgan_init(module: nn.Module) -> None:
    """The DCGAN paper's initialisation: conv weights N(0, 0.02), BatchNorm weights N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


@torch.no_grad()
def recalibrated(generator: Generator, batches: int = 4, batch_size: int = 256, seed: int = 0) -> Generator:
    """A copy of ``generator`` whose BatchNorm statistics are exact averages over fresh latents.

    Averaged weights do not match the running statistics collected with the raw weights, so before an
    EMA generator is used in eval mode its statistics are re-estimated (cumulative average, not momentum).
    The copy leaves the training state untouched, so sampling never perturbs a run.
    """
    g = copy.deepcopy(generator)
    norms = [m for m in g.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return g.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    g.train()
    rng = torch.Generator().manual_seed(seed)
    device = g.device
    pool = torch.tensor(g.classes or [0])  # the trained classes: statistics of the images G will be asked for
    sizes = None if g.class_weights is None else torch.tensor(g.class_weights, dtype=torch.float)
    for _ in range(batches):
        z = make_latents(batch_size, g.z_dim, rng, device, g.codes)
        y = None
        if g.takes_labels:
            idx = (torch.randint(len(pool), (batch_size,), generator=rng) if sizes is None
                   else torch.multinomial(sizes, batch_size, replacement=True, generator=rng))
            y = pool[idx].to(device)
        g(z, y)
    for m in norms:
        m.momentum = 0.1
    return g.eval()
