"""Build WGAN / WGAN-GP models: networks from nets.py, the objective from gancli's core.

Both families train with the core "wasserstein" loss (critic: E[f(G(z))] − E[f(x)],
G: −E[f(G(z))]) through :class:`WassersteinObjective`, which logs the critic's
Wasserstein estimate ("wdist") and, for WGAN-GP, the penalty ("gp") separately.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from torch import nn

from gancli.data.spec import DataSpec
from gancli.errors import GancliError
from gancli.objective import GAN, AdversarialObjective, OptimizerSettings

from gancli_plugin_wgan import nets


# martinarjovsky/WassersteinGAN main.py: 100 critic iterations for the first 25 generator
# iterations and at every 500th, so the critic is close to optimal when G starts and regularly after
REFERENCE_CRITIC_WARMUP, REFERENCE_CRITIC_EVERY, REFERENCE_CRITIC_STEPS = 25, 500, 100


@dataclass
class WassersteinObjective(AdversarialObjective):
    """AdversarialObjective plus the WGAN reference code's critic schedule (``critic_schedule="reference"``);
    the linear learning-rate decay of the WGAN-GP CIFAR ResNet (2e-4 → 0 over 100k steps) is the core's
    ``lr_decay_steps``."""

    critic_schedule: str = "constant"

    def d_steps(self, step: int) -> int:
        if self.critic_schedule == "reference" and (
            step < REFERENCE_CRITIC_WARMUP or step % REFERENCE_CRITIC_EVERY == 0
        ):
            return REFERENCE_CRITIC_STEPS
        return self.n_critic


def resolve_arch(config, spec: DataSpec, family: str) -> str:
    arch = config.arch
    if arch == "auto":
        arch = "mlp" if spec.kind == "points" else "dcgan"
    if spec.kind == "points" and arch != "mlp":
        raise GancliError(f"{family} on 2-D points needs arch=mlp (or auto); {arch} is for images")
    if spec.kind == "image" and spec.channels not in (1, 3):
        raise GancliError(f"{family} makes 1- or 3-channel images; the data has {spec.channels}")
    if arch != "mlp" and spec.kind == "image":
        nets.check_conv_resolution(arch, spec.resolution)
    return arch


def _num_classes(config, spec: DataSpec) -> int:
    if not config.conditional:
        return 0
    if spec.num_classes < 2:
        raise GancliError("conditional=true needs labelled data (class sub-folders or labels)")
    return spec.num_classes


def build_networks(config, spec: DataSpec, *, arch: str, critic_norm: str) -> tuple[nn.Module, nn.Module]:
    width = config.width or nets.DEFAULT_WIDTH[arch]
    num_classes = _num_classes(config, spec)
    if arch == "mlp":
        scale = config.point_scale if spec.kind == "points" else 1.0
        G = nets.MLPGenerator(
            config.z_dim, width, config.mlp_layers, spec.shape, images=spec.kind == "image", num_classes=num_classes,
            scale=scale,
        )
        D = nets.MLPCritic(math.prod(spec.shape), width, config.mlp_layers, critic_norm, num_classes, scale=scale)
    elif arch == "dcgan":
        G = nets.DCGANGenerator(config.z_dim, width, spec.channels, spec.resolution, num_classes)
        D = nets.DCGANCritic(width, spec.channels, spec.resolution, critic_norm, num_classes)
    elif arch == "resnet":
        G = nets.ResNetGenerator(config.z_dim, width, spec.channels, spec.resolution, num_classes)
        D = nets.ResNetCritic(width, spec.channels, spec.resolution, critic_norm, num_classes)
    else:
        raise GancliError(f"unknown arch {arch!r}; choose mlp, dcgan, resnet or auto")
    return G, D


def build_wgan(config, spec: DataSpec) -> GAN:
    arch = resolve_arch(config, spec, "wgan")
    critic_norm = config.critic_norm or ("batch" if arch == "dcgan" else "none")
    G, D = build_networks(config, spec, arch=arch, critic_norm=critic_norm)
    optimizer = OptimizerSettings(
        name=config.optimizer, lr_g=config.lr, lr_d=config.lr_d or config.lr, betas=(config.beta1, config.beta2)
    )
    objective = WassersteinObjective(
        loss="wasserstein", optimizer=optimizer, n_critic=config.n_critic, clip_weights=config.clip,
        lr_decay_steps=config.lr_decay_steps, critic_schedule=config.critic_schedule,
    )
    return GAN(G, D, objective)


def build_wgan_gp(config, spec: DataSpec) -> GAN:
    arch = resolve_arch(config, spec, "wgan-gp")
    G, D = build_networks(config, spec, arch=arch, critic_norm=config.critic_norm)
    batch_norms = [name for name, m in D.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if batch_norms:  # the per-example penalty is wrong for a critic that mixes examples
        raise GancliError(f"wgan-gp critic must not use BatchNorm (found {', '.join(batch_norms)})")
    optimizer = OptimizerSettings(
        name="adam", lr_g=config.lr, lr_d=config.lr_d or config.lr, betas=(config.beta1, config.beta2)
    )
    objective = WassersteinObjective(
        loss="wasserstein", optimizer=optimizer, n_critic=config.n_critic, gradient_penalty=config.gp_lambda,
        lr_decay_steps=config.lr_decay_steps,
    )
    return GAN(G, D, objective)
