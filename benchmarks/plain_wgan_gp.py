"""The baseline: WGAN-GP trained the way the PyTorch ports of igul222/improved_wgan_training do it.

Same networks, initialisation and hyperparameters as ``gancli train wgan-gp --set arch=dcgan`` (the
plugin's DCGAN-like Generator and critic, which initialise themselves; the plugin's defaults, which
are the paper's), written as gan_mnist.py / gan_cifar.py are ported: a DataLoader over float images
drawn from endlessly, ``CRITIC_ITERS`` critic updates per generator update, each on a fresh real batch
and fresh noise with G frozen (``torch.no_grad``), the penalty on per-example random interpolates
through ``torch.autograd.grad(create_graph=True)``, critic loss D(fake) − D(real) + λ·GP in one
backward, the critic's ``requires_grad`` switched off for the G update (loss −D(G(z))), Adam,
fp32, default memory format, and the scripts' per-iteration ``.item()`` reads.
"""
from __future__ import annotations

import torch
from torch import autograd, optim

from benchmarks.plain_data import EndlessImages

LAMBDA = 10.0  # gradient penalty weight
CRITIC_ITERS = 5  # critic updates per generator update
LR = 1e-4
BETAS = (0.0, 0.9)


class PlainWGANGP:
    def __init__(self, images_uint8: torch.Tensor, *, z_dim: int, width: int, batch_size: int, seed: int = 0):
        from gancli_plugin_wgan.nets import DCGANCritic, DCGANGenerator

        torch.manual_seed(seed)
        channels, resolution = images_uint8.shape[1], images_uint8.shape[-1]
        self.nz = z_dim
        self.netG = DCGANGenerator(z_dim, width, channels, resolution)
        self.netD = DCGANCritic(width, channels, resolution, norm="none")
        self.optimizerD = optim.Adam(self.netD.parameters(), lr=LR, betas=BETAS)
        self.optimizerG = optim.Adam(self.netG.parameters(), lr=LR, betas=BETAS)
        self.real_batches = EndlessImages(images_uint8, batch_size)

    def gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        alpha = torch.rand(real.size(0), 1, 1, 1).expand_as(real)
        interpolates = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        disc_interpolates = self.netD(interpolates)
        gradients = autograd.grad(outputs=disc_interpolates, inputs=interpolates,
                                  grad_outputs=torch.ones_like(disc_interpolates),
                                  create_graph=True, retain_graph=True, only_inputs=True)[0]
        return ((gradients.view(gradients.size(0), -1).norm(2, dim=1) - 1) ** 2).mean()

    def step(self) -> dict[str, float]:
        # (1) update D: CRITIC_ITERS times
        for p in self.netD.parameters():
            p.requires_grad = True
        for _ in range(CRITIC_ITERS):
            real = self.real_batches.next()
            b = real.size(0)
            self.netD.zero_grad()
            D_real = self.netD(real).mean()
            noise = torch.randn(b, self.nz)
            with torch.no_grad():  # totally freeze netG
                fake = self.netG(noise)
            D_fake = self.netD(fake).mean()
            gradient_penalty = self.gradient_penalty(real, fake)
            D_cost = D_fake - D_real + LAMBDA * gradient_penalty
            D_cost.backward()
            Wasserstein_D = D_real - D_fake
            self.optimizerD.step()
        # (2) update G
        for p in self.netD.parameters():
            p.requires_grad = False  # to avoid computation
        self.netG.zero_grad()
        noise = torch.randn(b, self.nz)
        G_cost = -self.netD(self.netG(noise)).mean()
        G_cost.backward()
        self.optimizerG.step()
        return {"loss_d": D_cost.item(), "loss_g": G_cost.item(), "wdist": Wasserstein_D.item(),
                "gp": gradient_penalty.item()}
