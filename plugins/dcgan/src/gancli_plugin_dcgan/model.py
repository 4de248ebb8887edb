"""DCGAN networks (Radford et al. 2015, section 3 and figure 1)."""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from gancli.data.spec import DataSpec
from gancli.errors import GancliError
from gancli.nn import ClassProjection
from gancli.objective import GAN, AdversarialObjective, OptimizerSettings

SUPPORTED_RESOLUTIONS = (16, 32, 64, 128, 256)


def _check_resolution(resolution: int) -> int:
    if resolution not in SUPPORTED_RESOLUTIONS:
        raise GancliError(
            f"dcgan makes square images of side {', '.join(map(str, SUPPORTED_RESOLUTIONS))}; got {resolution} "
            f"(use --resolution 32 or 64)"
        )
    return int(math.log2(resolution // 4))  # number of ×2 stages after 4×4


class Generator(nn.Module):
    """z → 4×4×(8·ngf) by a transposed conv, then ×2 stages halving channels; BN+ReLU; tanh out."""

    def __init__(self, z_dim: int, ngf: int, channels: int, resolution: int, num_classes: int = 0) -> None:
        super().__init__()
        stages = _check_resolution(resolution)
        self.z_dim = z_dim
        self.num_classes = num_classes
        embed_dim = z_dim if num_classes else 0
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None
        width = ngf * 8
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim + embed_dim, width, 4, 1, 0, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        for _ in range(stages - 1):
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2), nn.ReLU(True)]
            width //= 2
        # no BatchNorm on the output layer (paper, section 3)
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, y: Optional[Tensor] = None) -> Tensor:
        if self.embed is not None:
            if y is None:
                raise ValueError("this conditional generator needs class labels y")
            z = torch.cat([z, self.embed(y)], dim=1)
        return self.net(z.view(z.shape[0], -1, 1, 1))


class Discriminator(nn.Module):
    """Strided convs, LeakyReLU(0.2), BN on every layer but the input one; 4×4 conv to one logit.

    Conditional models add a projection term ⟨embed(y), φ(x)⟩ (Miyato & Koyama 2018).
    ``return_features=True`` also returns φ(x), the pooled last hidden layer (for feature matching).
    """

    def __init__(self, ndf: int, channels: int, resolution: int, num_classes: int = 0) -> None:
        super().__init__()
        stages = _check_resolution(resolution)
        width = ndf * 8 // 2 ** (stages - 1)
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        for _ in range(stages - 1):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 2), nn.LeakyReLU(0.2, True)]
            width *= 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(width, 1, 4, 1, 0, bias=False)
        self.num_classes = num_classes
        self.projection = ClassProjection(width, num_classes)
        # gancli 0.1 kept the class embedding at the top level ("embed.weight")
        self.register_load_state_dict_pre_hook(_accept_old_embedding_name)

    def forward(self, x: Tensor, y: Optional[Tensor] = None, return_features: bool = False):
        h = self.features(x)
        pooled = h.sum(dim=(2, 3))
        logit = self.projection(self.head(h).flatten(), pooled, y)
        return (logit, pooled) if return_features else logit


def _accept_old_embedding_name(module, state_dict, prefix, *args) -> None:
    if prefix + "embed.weight" in state_dict:
        state_dict[prefix + "projection.embed.weight"] = state_dict.pop(prefix + "embed.weight")


def init_weights(module: nn.Module, std: float) -> None:
    """N(0, std) for conv weights; BN γ ~ N(1, std), β = 0 (the paper's init)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, std)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


def build(config, spec: DataSpec) -> GAN:
    if spec.kind != "image":
        raise GancliError("dcgan trains on images; for 2-D points use the gan family")
    if spec.channels not in (1, 3):
        raise GancliError(f"dcgan makes 1- or 3-channel images; the data has {spec.channels}")
    num_classes = 0
    if config.conditional:
        if spec.num_classes < 2:
            raise GancliError("conditional=true needs labelled data (class sub-folders or labels)")
        num_classes = spec.num_classes
    G = Generator(config.z_dim, config.ngf, spec.channels, spec.resolution, num_classes)
    D = Discriminator(config.ndf, spec.channels, spec.resolution, num_classes)
    init_weights(G, config.init_std)
    init_weights(D, config.init_std)
    optimizer = OptimizerSettings(
        name="adam", lr_g=config.lr, lr_d=config.lr_d or config.lr, betas=(config.beta1, config.beta2)
    )
    objective = AdversarialObjective(
        loss=config.loss, optimizer=optimizer, n_critic=config.n_critic, real_label=config.real_label
    )
    return GAN(G, D, objective)
