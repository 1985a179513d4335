"""R3GAN's ResNet (Huang, Gokaslan, Kuleshov and Tompkin, NeurIPS 2024, "The GAN is dead; long live the GAN!"):
a plain residual network with no normalisation, for G and D alike.

- A residual block is a 1×1 conv that widens the stage's C channels to E·C, a grouped 3×3 conv (``cardinality``
  groups), and a 1×1 conv back to C, with a bias and a leaky ReLU (0.2) after each of the first two; the block
  adds its input. Fix-up initialisation: the last 1×1 of every block starts at zero (each block begins as the
  identity), and the two before it are scaled by L^(-1/4) for L blocks in the network.
- Stages of ``blocks`` blocks, one per resolution; between stages a transition: in G a 1×1 conv (where the width
  changes) then a low-pass bilinear ×2 up-sampling, in D the low-pass ×2 down-sampling then the 1×1 conv. The
  filter is the [1, 3, 3, 1] binomial, StyleGAN2's.
- G starts from a learned k×k basis (4×4, or 7×7 for 28-pixel images) that z scales channel by channel, and ends
  in a 1×1 conv to the image (and a Tanh, as every ganforge generator). D starts with a 1×1 conv from the image
  and ends with a depthwise k×k conv (one value per channel) and a linear layer to its logit.
- Conditional: G joins a label embedding to z; D projects (its last features dotted with a learned class vector
  make the logit), as R3GAN does.

One module for every resolution: ``widths`` lists the channels of each stage from the smallest map up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..codes import Codes
from ..errors import ConfigError
from .base import Discriminator, Generator, apply_spectral_norm, minibatch_stddev, pack_images
from .codes import CodeHead
from .conditioning import LabelEmbedding

SLOPE = 0.2
ACTIVATION_GAIN = math.sqrt(2 / (1 + SLOPE**2))  # He's gain for a leaky ReLU of that slope
BASES = {8: 4, 16: 4, 28: 7, 32: 4, 64: 4, 128: 4, 256: 4}  # resolution -> side of G's basis and D's last map


def stage_sizes(resolution: int) -> list[int]:
    """The side of each stage's maps, smallest first: 4, 8, ..., resolution (28 px: 7, 14, 28)."""
    if resolution not in BASES:
        raise ConfigError(f"--image-size: resnet supports resolutions {', '.join(map(str, BASES))}, not "
                          f"{resolution}; pass --image-size with one of them")
    sizes = [BASES[resolution]]
    while sizes[-1] < resolution:
        sizes.append(sizes[-1] * 2)
    return sizes


def stage_widths(widths: Sequence[int], stages: int) -> list[int]:
    """Channels of each of ``stages`` stages, smallest map first: ``widths``, its last entry repeated."""
    if not widths or min(widths) < 1:
        raise ConfigError(f"--widths must list positive channel counts, got {list(widths)}")
    return [widths[min(i, len(widths) - 1)] for i in range(stages)]


def _init(conv: nn.Module, gain: float) -> None:
    """Variance scaling (He): weights N(0, gain² / fan-in), zero when ``gain`` is 0; biases zero."""
    w = conv.weight
    fan_in = w[0].numel()  # (in / groups) × kernel area, or in_features
    if gain == 0:
        nn.init.zeros_(w)
    else:
        nn.init.normal_(w, 0.0, gain / math.sqrt(fan_in))
    if getattr(conv, "bias", None) is not None:
        nn.init.zeros_(conv.bias)


class BiasedLeakyReLU(nn.Module):
    """A per-channel bias, then leaky ReLU: the convolutions themselves carry no bias, as in R3GAN."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x + self.bias.view(1, -1, 1, 1).to(x.dtype), SLOPE)


class ResidualBlock(nn.Module):
    """x + 1×1(E·C→C) ∘ act ∘ grouped 3×3 ∘ act ∘ 1×1(C→E·C) (x); starts as the identity (fix-up)."""

    def __init__(self, channels: int, cardinality: int, expansion: int, total_blocks: int) -> None:
        super().__init__()
        wide = channels * expansion
        groups = math.gcd(cardinality, wide)  # the groups must divide the widened channels
        self.widen = nn.Conv2d(channels, wide, 1, bias=False)
        self.act1 = BiasedLeakyReLU(wide)
        self.mix = nn.Conv2d(wide, wide, 3, padding=1, groups=groups, bias=False)
        self.act2 = BiasedLeakyReLU(wide)
        self.narrow = nn.Conv2d(wide, channels, 1, bias=False)
        scale = ACTIVATION_GAIN * total_blocks ** (-1 / 4)  # R3GAN: L^(-1/(2m-2)) for m = 3 layers per branch
        _init(self.widen, scale)
        _init(self.mix, scale)
        _init(self.narrow, 0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C, H, W)
        return x + self.narrow(self.act2(self.mix(self.act1(self.widen(x)))))


def _binomial(channels: int, gain: float) -> torch.Tensor:
    """The [1, 3, 3, 1] ⊗ [1, 3, 3, 1] low-pass filter, summing to ``gain``, one copy per channel."""
    f = torch.tensor([1.0, 3.0, 3.0, 1.0])
    k = torch.outer(f, f)
    return (k * gain / k.sum()).expand(channels, 1, 4, 4).contiguous()


class Upsample(nn.Module):
    """×2 bilinear up-sampling as a filter (a depthwise transposed conv), after a 1×1 conv where the width changes."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.project = nn.Conv2d(in_channels, out_channels, 1, bias=False) if in_channels != out_channels else None
        if self.project is not None:
            _init(self.project, 1.0)
        self.register_buffer("kernel", _binomial(out_channels, 4.0), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, H, W) -> (B, C_out, 2H, 2W)
        if self.project is not None:
            x = self.project(x)  # at the low resolution: a quarter of the cost
        k = self.kernel.to(x.dtype)
        return F.conv_transpose2d(x, k, stride=2, padding=1, groups=x.shape[1])


class Downsample(nn.Module):
    """The low-pass filter with stride 2, then a 1×1 conv where the width changes."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.register_buffer("kernel", _binomial(in_channels, 1.0), persistent=False)
        self.project = nn.Conv2d(in_channels, out_channels, 1, bias=False) if in_channels != out_channels else None
        if self.project is not None:
            _init(self.project, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, H, W) -> (B, C_out, H/2, W/2)
        x = F.conv2d(x, self.kernel.to(x.dtype), stride=2, padding=1, groups=x.shape[1])
        return self.project(x) if self.project is not None else x


def _stage(channels: int, blocks: int, cardinality: int, expansion: int, total: int) -> nn.Sequential:
    return nn.Sequential(*(ResidualBlock(channels, cardinality, expansion, total) for _ in range(blocks)))


class ResNetGenerator(Generator):
    family = "resnet"

    def __init__(self, z_dim: int = 100, channels: int = 3, resolution: int = 32, widths: Sequence[int] = (64,),
                 blocks: int = 2, cardinality: int = 8, expansion: int = 2, num_classes: int = 0,
                 embed_dim: int = 32, codes: Sequence[str] = ()) -> None:
        super().__init__(z_dim=z_dim, channels=channels, resolution=resolution, widths=list(widths), blocks=blocks,
                         cardinality=cardinality, expansion=expansion, num_classes=num_classes, embed_dim=embed_dim,
                         codes=list(codes))
        self.z_dim, self.channels, self.resolution, self.num_classes = z_dim, channels, resolution, num_classes
        self.codes = Codes.parse(codes)
        sizes = stage_sizes(resolution)
        w = stage_widths(widths, len(sizes))
        total = blocks * len(sizes)
        self.label = LabelEmbedding(num_classes, embed_dim) if num_classes else None
        # The basis: a learned C×k×k map, scaled channel by channel by a linear function of z.
        self.basis = nn.Parameter(torch.randn(w[0], sizes[0], sizes[0]))
        self.scale = nn.Linear(self.latent_dim + (embed_dim if num_classes else 0), w[0], bias=False)
        _init(self.scale, 1.0)
        self.stages = nn.ModuleList([_stage(w[0], blocks, cardinality, expansion, total)])
        self.ups = nn.ModuleList()
        for prev, width in zip(w, w[1:], strict=False):
            self.ups.append(Upsample(prev, width))
            self.stages.append(_stage(width, blocks, cardinality, expansion, total))
        self.to_image = nn.Conv2d(w[-1], channels, 1, bias=False)
        _init(self.to_image, 1.0)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.label is not None:
            z = self.label(z, y)
        return self.decode(z)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        x = self.basis.to(h.dtype) * self.scale(h)[:, :, None, None]  # (B, C0, k, k)
        x = self.stages[0](x)
        for up, stage in zip(self.ups, self.stages[1:], strict=True):
            x = stage(up(x))  # (B, C, 2H, 2W)
        return torch.tanh(self.to_image(x))  # (B, channels, resolution, resolution)


class ResNetDiscriminator(Discriminator):
    family = "resnet"

    def __init__(self, channels: int = 3, resolution: int = 32, widths: Sequence[int] = (64,), blocks: int = 2,
                 cardinality: int = 8, expansion: int = 2, num_classes: int = 0, embed_dim: int = 32,
                 norm: str = "none", mbstd: int = 0, pack: int = 1, codes: Sequence[str] = ()) -> None:
        super().__init__(channels=channels, resolution=resolution, widths=list(widths), blocks=blocks,
                         cardinality=cardinality, expansion=expansion, num_classes=num_classes, embed_dim=embed_dim,
                         norm=norm, mbstd=mbstd, pack=pack, codes=list(codes))
        self.num_classes, self.mbstd, self.pack = num_classes, mbstd, pack
        sizes = stage_sizes(resolution)
        w = stage_widths(widths, len(sizes))[::-1]  # largest map first: G's stages in reverse
        total = blocks * len(sizes)
        self.from_image = nn.Conv2d(channels * pack, w[0], 1, bias=False)
        _init(self.from_image, 1.0)
        self.stages = nn.ModuleList()
        self.downs = nn.ModuleList()
        for i, width in enumerate(w):
            self.stages.append(_stage(width, blocks, cardinality, expansion, total))
            if i + 1 < len(w):
                self.downs.append(Downsample(width, w[i + 1]))
        last, k = w[-1] + (1 if mbstd else 0), sizes[0]
        self.basis = nn.Conv2d(last, last, k, groups=last, bias=False)  # k×k -> 1×1: one value per channel
        _init(self.basis, 1.0)
        self.head = nn.Linear(last, embed_dim if num_classes else 1, bias=False)
        _init(self.head, 1.0)
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None
        if self.embed is not None:
            nn.init.normal_(self.embed.weight, 0.0, 1 / math.sqrt(embed_dim))
        self.q = CodeHead(last, Codes.parse(codes)) if codes else None
        if norm == "spectral":
            apply_spectral_norm(self)

    def features(self, x: torch.Tensor, y: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Each stage's output, largest map first (the last is D's k×k map before its head)."""
        x = self.from_image(pack_images(x, self.pack))
        feats = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            feats.append(x)
            if i < len(self.downs):
                x = self.downs[i](x)
        return feats

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None,
                codes: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        h = self.basis(minibatch_stddev(self.features(x, y)[-1], self.mbstd)).flatten(1)  # (B / pack, C)
        out = self.head(h)  # (B / pack, 1) or (B / pack, embed_dim)
        # Conditional: projection, the class's vector dotted with D's features.
        logit = out.squeeze(1) if self.embed is None else (out * self.embed(y)).sum(1)
        return self.output(logit, h, codes)
