"""DCGAN (Radford et al. 2016): strided (transposed) convolutions, BatchNorm, no pooling, no hidden FC layers.

One module for every resolution: a layout table gives the size of the first feature map and the
channel multipliers, and the layers follow from it. At 64×64 with defaults this is layer for layer the
paper's network; at 28×28 it is the common MNIST DCGAN (7×7 start).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..codes import Codes
from ..errors import ConfigError
from .base import Discriminator, Generator, apply_spectral_norm, dcgan_init, minibatch_stddev, pack_images
from .codes import CodeHead
from .conditioning import LabelEmbedding, ProjectionHead


@dataclass(frozen=True)
class Layout:
    base: int  # side of the smallest feature map (G's first, D's last)
    g_mults: tuple[int, ...]  # generator channels / ngf, smallest map first
    d_mults: tuple[int, ...]  # discriminator channels / ndf, largest map first


LAYOUTS: dict[int, Layout] = {
    8: Layout(4, (2,), (1,)),
    16: Layout(4, (4, 2), (1, 2)),
    28: Layout(7, (4, 2), (1, 2)),
    32: Layout(4, (4, 2, 1), (1, 2, 4)),
    64: Layout(4, (8, 4, 2, 1), (1, 2, 4, 8)),
    128: Layout(4, (16, 8, 4, 2, 1), (1, 2, 4, 8, 16)),
}


class VectorToMap(nn.ConvTranspose2d):
    """G's first layer, a transposed convolution of a 1×1 input onto a k×k map: computed as the matrix product
    it is. oneDNN runs it as a deconvolution and reorders the weight on every call, which took ~9 % of the
    MNIST DCGAN step on a CPU (``python -m benchmarks speed``). Same weights and state-dict keys as the conv layer."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, in, 1, 1)
        b, (k, _), w = x.shape[0], self.kernel_size, self.weight
        if w.is_contiguous():  # (in, out, k, k)
            return (x.flatten(1) @ w.flatten(1)).view(b, self.out_channels, k, k)
        # Channels-last weight, (in, k, k, out) in memory: the product comes out channels-last too.
        out = x.flatten(1) @ w.permute(0, 2, 3, 1).reshape(w.shape[0], -1)
        return out.view(b, k, k, self.out_channels).permute(0, 3, 1, 2)


class MapToScore(nn.Conv2d):
    """D's head, a one-output convolution whose kernel covers the whole k×k map: a dot product per image,
    computed as one in any memory layout (oneDNN's convolution for it cost ~3 % of the step)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, in, k, k) -> (B, 1, 1, 1)
        return (x * self.weight).sum(dim=(1, 2, 3)).view(-1, 1, 1, 1)


class FirstConv(nn.Conv2d):
    """D's first convolution, over the image and, in a conditional D, ``num_classes`` one-hot label planes
    (the last input channels of the weight), without building the planes.

    A one-hot plane is constant, so by linearity its part of the convolution is one fixed map per class:
    computed once per call (one small convolution of a plane of ones) and gathered by label, it replaces K
    extra input channels per image, which cost more than the image itself. On a one-channel image on a CPU
    the image part runs as im2col (``F.unfold``) and one matrix product: oneDNN's direct convolution, which
    vectorises over input channels, idles most SIMD lanes there (2–3× slower forward and backward); from three
    channels on, and on GPUs, it is the convolution.
    """

    def __init__(self, *args: Any, num_classes: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        w, c = self.weight, self.in_channels - self.num_classes  # (out, C + K, k, k)
        out = self._image_part(x, w[:, :c] if self.num_classes else w)  # (B, out, H', W')
        if not self.num_classes:
            return out
        ones = torch.ones(1, 1, *x.shape[-2:], device=x.device, dtype=x.dtype)
        label_w = w[:, c:].transpose(0, 1).reshape(self.num_classes * self.out_channels, 1, *self.kernel_size)
        maps = F.conv2d(ones, label_w, None, self.stride, self.padding)  # (1, K * out, H', W')
        return out + maps.view(self.num_classes, self.out_channels, *out.shape[-2:])[y]

    def _image_part(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != 1 or x.device.type != "cpu":
            return F.conv2d(x, w, None, self.stride, self.padding)
        (k, _), (s, _), (p, _) = self.kernel_size, self.stride, self.padding
        cols = F.unfold(x, k, padding=p, stride=s)  # (B, k*k, L)
        out = w.reshape(self.out_channels, -1) @ cols  # (B, out, L)
        h, ww = ((n + 2 * p - k) // s + 1 for n in x.shape[-2:])
        return out.view(x.shape[0], self.out_channels, h, ww)


def layout_for(resolution: int) -> Layout:
    if resolution not in LAYOUTS:
        raise ConfigError(
            f"--image-size: dcgan supports resolutions {', '.join(map(str, LAYOUTS))}, not {resolution}; "
            "pass --image-size with one of them"
        )
    return LAYOUTS[resolution]


class DCGANGenerator(Generator):
    family = "dcgan"

    def __init__(self, z_dim: int = 100, channels: int = 3, resolution: int = 64, ngf: int = 64,
                 num_classes: int = 0, embed_dim: int = 32, codes: Sequence[str] = ()) -> None:
        super().__init__(z_dim=z_dim, channels=channels, resolution=resolution, ngf=ngf,
                         num_classes=num_classes, embed_dim=embed_dim, codes=list(codes))
        self.z_dim, self.channels, self.resolution, self.num_classes = z_dim, channels, resolution, num_classes
        self.codes = Codes.parse(codes)
        layout = layout_for(resolution)
        self.label = LabelEmbedding(num_classes, embed_dim) if num_classes else None
        width = self.latent_dim + (embed_dim if num_classes else 0)
        first = layout.g_mults[0] * ngf
        layers: list[nn.Module] = [
            VectorToMap(width, first, layout.base, 1, 0, bias=False),  # (B, first, base, base)
            nn.BatchNorm2d(first), nn.ReLU(inplace=True),
        ]
        for prev, mult in zip(layout.g_mults, layout.g_mults[1:], strict=False):
            layers += [nn.ConvTranspose2d(prev * ngf, mult * ngf, 4, 2, 1, bias=False),  # doubles H, W
                       nn.BatchNorm2d(mult * ngf), nn.ReLU(inplace=True)]
        layers += [nn.ConvTranspose2d(layout.g_mults[-1] * ngf, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.label is not None:
            z = self.label(z, y)
        return self.decode(z)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h[:, :, None, None])  # (B, C, H, W)


class DCGANDiscriminator(Discriminator):
    family = "dcgan"

    def __init__(self, channels: int = 3, resolution: int = 64, ndf: int = 64, num_classes: int = 0,
                 dropout: float = 0.0, norm: str = "batch", mbstd: int = 0, pack: int = 1,
                 codes: Sequence[str] = ()) -> None:
        super().__init__(channels=channels, resolution=resolution, ndf=ndf, num_classes=num_classes,
                         dropout=dropout, norm=norm, mbstd=mbstd, pack=pack, codes=list(codes))
        self.num_classes, self.mbstd, self.pack = num_classes, mbstd, pack
        layout = layout_for(resolution)
        self.blocks = nn.ModuleList()
        width = channels * pack + num_classes  # conditional: one-hot label planes join the image (see FirstConv)
        for i, mult in enumerate(layout.d_mults):
            conv = FirstConv(width, mult * ndf, 4, 2, 1, bias=False, num_classes=num_classes) if i == 0 else \
                nn.Conv2d(width, mult * ndf, 4, 2, 1, bias=False)
            block: list[nn.Module] = [conv]  # halves H, W
            if i > 0 and norm == "batch":  # the paper: BatchNorm on every layer but the first
                block.append(nn.BatchNorm2d(mult * ndf))
            block.append(nn.LeakyReLU(0.2, inplace=True))
            if dropout > 0:
                block.append(nn.Dropout(dropout))
            self.blocks.append(nn.Sequential(*block))
            width = mult * ndf
        self.head = MapToScore(width + (1 if mbstd else 0), 1, layout.base, 1, 0, bias=False)  # (B, 1, 1, 1)
        self.projection = ProjectionHead(num_classes, width) if num_classes else None
        self.q = CodeHead(width * layout.base**2, Codes.parse(codes)) if codes else None
        dcgan_init(self)
        if norm == "spectral":
            apply_spectral_norm(self)

    def features(self, x: torch.Tensor, y: torch.Tensor | None = None) -> list[torch.Tensor]:
        first, x = self.blocks[0], pack_images(x, self.pack)
        x = first[0](x, y) if self.num_classes else first[0](x)  # (B, ndf, H/2, W/2): image and label planes
        x = first[1:](x)
        feats = [x]
        for block in self.blocks[1:]:
            x = block(x)
            feats.append(x)
        return feats

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None,
                codes: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x, y)[-1]  # (B / pack, width, base, base)
        logit = self.head(minibatch_stddev(h, self.mbstd)).flatten()  # (B / pack,)
        if self.projection is not None:
            logit = logit + self.projection(h, y)
        return self.output(logit, h, codes)
