"""The baseline: DCGAN trained the way the PyTorch DCGAN example does it.

Same networks, initialisation and losses as ``gancli train dcgan`` (the plugin's Generator and
Discriminator; BCE with logits is the non-saturating loss), written the typical way: a DataLoader over
float images, ``fake = netG(noise)``, D stepped on real and ``fake.detach()`` with two backward calls,
G stepped through ``netD(fake)`` with D's weights still requiring grad, Adam with PyTorch's defaults,
fp32, default memory format, the example's per-iteration ``.item()`` reads.
"""
from __future__ import annotations

import torch
from torch import nn, optim

from benchmarks.plain_data import EndlessImages


class PlainDCGAN:
    def __init__(self, images_uint8: torch.Tensor, *, z_dim: int, width: int, batch_size: int, seed: int = 0):
        from gancli_plugin_dcgan.model import Discriminator, Generator, init_weights

        torch.manual_seed(seed)
        channels, resolution = images_uint8.shape[1], images_uint8.shape[-1]
        self.nz = z_dim
        self.netG = Generator(z_dim, width, channels, resolution)
        self.netD = Discriminator(width, channels, resolution)
        init_weights(self.netG, 0.02)
        init_weights(self.netD, 0.02)
        self.criterion = nn.BCEWithLogitsLoss()
        self.optimizerD = optim.Adam(self.netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.optimizerG = optim.Adam(self.netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.real_batches = EndlessImages(images_uint8, batch_size)

    def step(self) -> dict[str, float]:
        real = self.real_batches.next()
        b = real.size(0)
        # (1) update D: maximize log(D(x)) + log(1 - D(G(z)))
        self.netD.zero_grad()
        label = torch.full((b,), 1.0)
        output = self.netD(real)
        errD_real = self.criterion(output, label)
        errD_real.backward()
        D_x = output.sigmoid().mean().item()
        noise = torch.randn(b, self.nz)
        fake = self.netG(noise)
        label.fill_(0.0)
        output = self.netD(fake.detach())
        errD_fake = self.criterion(output, label)
        errD_fake.backward()
        D_G_z1 = output.sigmoid().mean().item()
        errD = errD_real + errD_fake
        self.optimizerD.step()
        # (2) update G: maximize log(D(G(z)))
        self.netG.zero_grad()
        label.fill_(1.0)
        output = self.netD(fake)
        errG = self.criterion(output, label)
        errG.backward()
        D_G_z2 = output.sigmoid().mean().item()
        self.optimizerG.step()
        return {"loss_d": errD.item(), "loss_g": errG.item(), "D_x": D_x, "D_G_z1": D_G_z1, "D_G_z2": D_G_z2}
