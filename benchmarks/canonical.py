"""The canonical tutorial GAN loop, the baseline the benchmarks measure ganforge against.

It is the loop the PyTorch DCGAN tutorial and most GAN tutorials write: a DataLoader over a TensorDataset
of float images, D ending in nn.Sigmoid with nn.BCELoss, label tensors built every step, separate real and
fake D passes, D(fake) run again for the G step, Adam(2e-4, (0.5, 0.999)), float32, NCHW. It trains
ganforge's own architecture (``build_models``) with the tutorials' layer classes: the same networks.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ganforge import Config, ImageData
from ganforge.models import Generator, build_models
from ganforge.models.dcgan import FirstConv, MapToScore, VectorToMap


def tutorial_layers(module: nn.Module) -> nn.Module:
    """ganforge computes DCGAN's 1×1 -> k×k first layer, its k×k -> 1 head and D's convolution of gray images
    as matrix products; the tutorials write them as plain nn.ConvTranspose2d / nn.Conv2d. Give them back
    those classes (ganforge's add no state of their own, so the weights and the function are unchanged)."""
    for m in module.modules():
        if type(m) in (VectorToMap, MapToScore, FirstConv):
            m.__class__ = m.__class__.__base__
    return module


def canonical_loop(model: str, data: ImageData, batch: int, device: torch.device, seed: int = 0,
                   **widths: int) -> tuple[Callable[[], None], Generator]:
    """One call of the returned function is one tutorial step; the generator it trains comes with it.

    ``widths``: architecture fields of ``Config`` (ngf, ndf, z_dim) where they differ from the paper's.
    """
    torch.manual_seed(seed)
    config = Config(model=model, **widths)
    netG, D = map(tutorial_layers, build_models(config, data.channels, data.resolution, 0))
    netG, netD = netG.to(device), nn.Sequential(D, nn.Sigmoid()).to(device)
    criterion = nn.BCELoss()
    optD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    images = torch.tensor(data.images, dtype=torch.float32) / 127.5 - 1.0  # a copy: prepared arrays are read-only
    loader = DataLoader(TensorDataset(images), batch_size=batch, shuffle=True, drop_last=True)
    state = {"it": iter(loader)}

    def step() -> None:
        try:
            (real,) = next(state["it"])
        except StopIteration:  # the DataLoader restarts at each epoch's end
            state["it"] = iter(loader)
            (real,) = next(state["it"])
        real = real.to(device)
        b = real.size(0)
        netD.zero_grad()
        label = torch.full((b,), 1.0, device=device)
        output = netD(real).view(-1)
        errD_real = criterion(output, label)
        errD_real.backward()
        noise = torch.randn(b, config.z_dim, device=device)
        fake = netG(noise)
        label.fill_(0.0)
        output = netD(fake.detach()).view(-1)
        errD_fake = criterion(output, label)
        errD_fake.backward()
        optD.step()
        netG.zero_grad()
        label.fill_(1.0)
        output = netD(fake).view(-1)
        errG = criterion(output, label)
        errG.backward()
        optG.step()

    return step, netG
