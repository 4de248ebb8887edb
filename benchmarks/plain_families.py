"""Plain PyTorch baselines for the families added with plugin API 2: the same networks, a hand-written loop.

Each loop builds G and D exactly as ``gancli train FAMILY --set ...`` does (the family's config
resolved from the same settings, then its own builder, seeded the same way), and trains them the
way the reference repositories' PyTorch code does: a DataLoader over float images, ``fake =
G(z)`` under ``torch.no_grad`` for the D steps, each on a fresh real batch, D's ``requires_grad``
switched off for the G step, Adam with the family's settings, fp32, default memory format, and the
scripts' per-iteration ``.item()`` reads.

* :class:`PlainHinge` (sngan, sagan, biggan): hinge loss, ``n_critic`` D steps (sngan_projection,
  BigGAN-PyTorch ``train_fns.py``), plus BigGAN's orthogonal regularization of G.
* :class:`PlainStyleGAN`: the non-saturating logistic loss with R1 on reals every step and style
  mixing through G.mapping/G.synthesis (stylegan2-ada ``loss.py``'s Gmain/Dmain/Dr1 in one loop).
* :class:`PlainStyleGAN2`: stylegan2-ada ``training_loop.py``'s phases Gmain, Greg (path length every 4
  steps on half the batch), Dmain, Dreg (R1 every 16 steps), each lazy phase's loss times its interval
  and both Adam optimizers with lr·c, β^c (c = k/(k + 1)), style mixing through G.mapping/G.synthesis.
* :class:`PlainProGAN`: WGAN-GP with the drift term at a fixed resolution (α = 1), as
  progressive_growing_of_gans' ``loss.py`` once growth is done.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import autograd, optim

from benchmarks.plain_data import EndlessImages


def build_family(family: str, images_uint8: torch.Tensor, settings: list[str], num_classes: int, seed: int):
    """(GAN, family config) as ``gancli train`` builds them for these settings and this data."""
    from gancli import config as cfg
    from gancli.data.spec import DataSpec
    from gancli.objective import Progress
    from gancli.plugins import get_family

    spec = DataSpec(kind="image", channels=images_uint8.shape[1], resolution=images_uint8.shape[-1],
                    num_classes=num_classes, name="bench", class_names=tuple(str(k) for k in range(num_classes)))
    _, family_config = cfg.resolve(family, flags={"data": {"source": "bench"}}, overrides=list(settings))
    torch.manual_seed(seed)
    gan = get_family(family).load_builder()(family_config, spec)
    # as the trainer does before its first step: a growing family builds its start phase (and sets α) here
    gan.objective.grow(Progress(0, 0), gan.generator, gan.discriminator)
    return gan, family_config


class _PlainLoop:
    family = ""

    def __init__(self, images_uint8: torch.Tensor, *, z_dim: int, width: int, batch_size: int, seed: int = 0,
                 settings: Optional[list[str]] = None, labels: Optional[torch.Tensor] = None) -> None:
        num_classes = int(labels.max()) + 1 if labels is not None else 0
        self.gan, self.config = build_family(self.family, images_uint8, settings or [], num_classes, seed)
        self.netG, self.netD = self.gan.generator, self.gan.discriminator
        self.nz = self.netG.z_dim
        self.num_classes = int(getattr(self.netG, "num_classes", 0) or 0)
        objective = self.gan.objective
        s = objective.optimizer
        self.n_critic = int(getattr(objective, "n_critic", 1))
        self.optimizerD = optim.Adam(self.netD.parameters(), lr=s.lr_d, betas=tuple(s.betas), eps=s.eps)
        self.optimizerG = optim.Adam(self.netG.parameters(), lr=s.lr_g, betas=tuple(s.betas), eps=s.eps)
        self.real_batches = EndlessImages(images_uint8, batch_size)
        self.batch_size = batch_size
        self.device = torch.device("cpu")

    def to(self, device) -> "_PlainLoop":
        """Both networks on ``device``, and the latents drawn there from then on (the real batches are the
        caller's: ``real_batches`` is anything with ``next()``). The style-mixing coin and cutoff stay CPU
        scalars, so reading them never waits for the device."""
        self.device = torch.device(device)
        self.netG.to(self.device)
        self.netD.to(self.device)
        return self

    def classes(self, b: int) -> Optional[torch.Tensor]:
        return torch.randint(0, self.num_classes, (b,), device=self.device) if self.num_classes else None


class PlainHinge(_PlainLoop):
    """SNGAN / SAGAN / BigGAN: D minimizes E[relu(1 − D(x))] + E[relu(1 + D(G(z)))], G minimizes −E[D(G(z))]."""

    def __init__(self, *args, family: str, **kwargs) -> None:
        self.family = family
        super().__init__(*args, **kwargs)
        self.ortho_beta = float(getattr(self.gan.objective, "ortho_beta", 0.0))

    def step(self) -> dict[str, float]:
        for p in self.netD.parameters():
            p.requires_grad = True
        for _ in range(self.n_critic):
            real = self.real_batches.next()
            b = real.size(0)
            y_real = self.classes(b)  # random labels: the benchmark's images carry no classes
            self.optimizerD.zero_grad()
            with torch.no_grad():
                y_fake = self.classes(b)
                fake = self.netG(torch.randn(b, self.nz, device=self.device), y_fake)
            loss_d = F.relu(1 - self.netD(real, y_real)).mean() + F.relu(1 + self.netD(fake, y_fake)).mean()
            loss_d.backward()
            self.optimizerD.step()
        for p in self.netD.parameters():
            p.requires_grad = False
        self.optimizerG.zero_grad()
        y = self.classes(b)
        loss_g = -self.netD(self.netG(torch.randn(b, self.nz, device=self.device), y), y).mean()
        if self.ortho_beta:
            from gancli_plugin_biggan.objective import generator_orthogonal_penalty

            loss_g = loss_g + 0.5 * self.ortho_beta * generator_orthogonal_penalty(self.netG)
        loss_g.backward()
        self.optimizerG.step()
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item()}


class PlainSNGAN(PlainHinge):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, family="sngan", **kwargs)


class PlainSAGAN(PlainHinge):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, family="sagan", **kwargs)


class PlainBigGAN(PlainHinge):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, family="biggan", **kwargs)


class PlainStyleGAN(_PlainLoop):
    """Non-saturating logistic loss, R1 (γ/2·‖∇D(x)‖²) on every D step, style mixing with probability p."""

    family = "stylegan"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.r1_gamma = float(self.config.r1_gamma)
        self.mixing = float(self.config.style_mixing_prob)

    def generate(self, b: int) -> torch.Tensor:
        # mapping broadcasts one w to every layer
        w = self.netG.mapping(torch.randn(b, self.nz, device=self.device)).clone()
        if torch.rand(()) < self.mixing:  # a second w from a random layer on, as stylegan2-ada's style_mixing
            cutoff = int(torch.randint(1, w.shape[1], ()))
            w[:, cutoff:] = self.netG.mapping(torch.randn(b, self.nz, device=self.device))[:, cutoff:]
        return self.netG.synthesis(w)

    def step(self) -> dict[str, float]:
        for p in self.netD.parameters():
            p.requires_grad = True
        real = self.real_batches.next().requires_grad_(self.r1_gamma > 0)
        b = real.size(0)
        self.optimizerD.zero_grad()
        with torch.no_grad():
            fake = self.generate(b)
        real_logits = self.netD(real)
        loss_d = F.softplus(self.netD(fake)).mean() + F.softplus(-real_logits).mean()
        if self.r1_gamma > 0:
            (grad,) = autograd.grad(real_logits.sum(), real, create_graph=True)
            loss_d = loss_d + 0.5 * self.r1_gamma * grad.square().sum(dim=(1, 2, 3)).mean()
        loss_d.backward()
        self.optimizerD.step()
        for p in self.netD.parameters():
            p.requires_grad = False
        self.optimizerG.zero_grad()
        loss_g = F.softplus(-self.netD(self.generate(b))).mean()
        loss_g.backward()
        self.optimizerG.step()
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item()}


class PlainStyleGAN2(PlainStyleGAN):
    """StyleGAN2's lazy phases in stylegan2-ada's order: Gmain, Greg every pl_interval, Dmain, Dreg every r1_interval."""

    family = "stylegan2"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        c = self.config
        self.r1_interval, self.pl_interval = int(c.r1_interval), int(c.pl_interval)
        self.pl_weight, self.pl_decay, self.pl_shrink = float(c.pl_weight), float(c.pl_decay), int(c.pl_batch_shrink)
        self.pl_mean = torch.zeros(())
        self.iteration = 0
        lazy = self.gan.objective.lazy_settings()  # lr·c, β^c for both networks
        eps = self.gan.objective.optimizer.eps
        self.optimizerG = optim.Adam(self.netG.parameters(), lr=lazy["G"][0], betas=lazy["G"][1], eps=eps)
        self.optimizerD = optim.Adam(self.netD.parameters(), lr=lazy["D"][0], betas=lazy["D"][1], eps=eps)

    def to(self, device) -> "PlainStyleGAN2":
        super().to(device)
        self.pl_mean = self.pl_mean.to(self.device)
        return self

    def generate_ws(self, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.netG.mapping(torch.randn(b, self.nz, device=self.device)).clone()
        if torch.rand(()) < self.mixing:
            cutoff = int(torch.randint(1, w.shape[1], ()))
            w[:, cutoff:] = self.netG.mapping(torch.randn(b, self.nz, device=self.device))[:, cutoff:]
        return self.netG.synthesis(w), w

    def step(self) -> dict[str, float]:
        i, terms = self.iteration, {}
        self.iteration += 1
        real = self.real_batches.next()
        b = real.size(0)
        for p in self.netD.parameters():
            p.requires_grad = False
        self.optimizerG.zero_grad()
        loss_g = F.softplus(-self.netD(self.generate_ws(b)[0])).mean()
        loss_g.backward()
        self.optimizerG.step()
        terms["loss_g"] = loss_g.item()
        if self.pl_weight > 0 and i % self.pl_interval == 0:
            self.optimizerG.zero_grad()
            img, ws = self.generate_ws(max(1, b // self.pl_shrink))
            noise = torch.randn_like(img) / (img.shape[2] * img.shape[3]) ** 0.5
            (grad,) = autograd.grad((img * noise).sum(), ws, create_graph=True)
            lengths = grad.square().sum(2).mean(1).sqrt()
            # float(): under autocast the lengths come out in bf16, and the running mean stays float32
            pl_mean = self.pl_mean.lerp(lengths.mean().float(), self.pl_decay)
            self.pl_mean = pl_mean.detach()
            loss_pl = (lengths - pl_mean).square().mean() * self.pl_weight * self.pl_interval
            loss_pl.backward()
            self.optimizerG.step()
            terms["loss_pl"] = loss_pl.item()
        for p in self.netD.parameters():
            p.requires_grad = True
        self.optimizerD.zero_grad()
        with torch.no_grad():
            fake = self.generate_ws(b)[0]
        loss_d = F.softplus(self.netD(fake)).mean() + F.softplus(-self.netD(real)).mean()
        loss_d.backward()
        self.optimizerD.step()
        terms["loss_d"] = loss_d.item()
        if self.r1_gamma > 0 and i % self.r1_interval == 0:
            self.optimizerD.zero_grad()
            real_r1 = real.detach().requires_grad_(True)
            (grad,) = autograd.grad(self.netD(real_r1).sum(), real_r1, create_graph=True)
            loss_r1 = 0.5 * self.r1_gamma * grad.square().sum(dim=(1, 2, 3)).mean() * self.r1_interval
            loss_r1.backward()
            self.optimizerD.step()
            terms["loss_r1"] = loss_r1.item()
        return terms


class PlainProGAN(_PlainLoop):
    """WGAN-GP (λ = 10) plus ε_drift·E[D(x)²], one D step per G step, at the networks' final resolution."""

    family = "progan"

    def step(self) -> dict[str, float]:
        gp_lambda, drift = float(self.config.gp_lambda), float(self.config.drift)
        for p in self.netD.parameters():
            p.requires_grad = True
        real = self.real_batches.next()
        b = real.size(0)
        self.optimizerD.zero_grad()
        with torch.no_grad():
            fake = self.netG(torch.randn(b, self.nz, device=self.device))
        real_scores = self.netD(real)
        alpha = torch.rand(b, 1, 1, 1, device=self.device)
        mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        (grad,) = autograd.grad(self.netD(mixed).sum(), mixed, create_graph=True)
        penalty = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
        loss_d = self.netD(fake).mean() - real_scores.mean() + gp_lambda * penalty + drift * real_scores.square().mean()
        loss_d.backward()
        self.optimizerD.step()
        for p in self.netD.parameters():
            p.requires_grad = False
        self.optimizerG.zero_grad()
        loss_g = -self.netD(self.netG(torch.randn(b, self.nz, device=self.device))).mean()
        loss_g.backward()
        self.optimizerG.step()
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item()}
