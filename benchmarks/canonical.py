"""The canonical tutorial GAN loop, the baseline the benchmarks measure ganforge against.

It is the loop the PyTorch DCGAN tutorial and most GAN tutorials write: a DataLoader over a TensorDataset
of float images, D ending in nn.Sigmoid with nn.BCELoss, label tensors built every step, separate real and
fake D passes, D(fake) run again for the G step, Adam(2e-4, (0.5, 0.999)), float32, NCHW. It trains
ganforge's own layers (``build_models``), so the comparison is of the loop, not of the networks.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ganforge import Config, ImageData
from ganforge.models import Generator, build_models


def canonical_loop(model: str, data: ImageData, batch: int, device: torch.device,
                   seed: int = 0) -> tuple[Callable[[], None], Generator]:
    """One call of the returned function is one tutorial step; the generator it trains comes with it."""
    torch.manual_seed(seed)
    netG, D = build_models(Config(model=model), data.channels, data.resolution, 0)
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
        noise = torch.randn(b, 100, device=device)
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
