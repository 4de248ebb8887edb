"""Generators and critics of WGAN and WGAN-GP: MLP, DCGAN-like conv, and the WGAN-GP CIFAR ResNet.

The settings follow the official WGAN-GP code (igul222/improved_wgan_training):
gan_toy.py (MLP), gan_cifar.py and gan_mnist.py (DCGAN-like), gan_cifar_resnet.py
(ResNet). Initialization follows its tflib: He-uniform for the toy MLP's ReLU
layers, Glorot-uniform with gain √2 for convolutions followed by a ReLU
("he_init"), plain Glorot-uniform for linear layers, shortcuts and outputs.

Critics return unbounded scores of shape (N,); ``return_features=True`` also
returns the last hidden features (pooled), as every gancli discriminator does.
Conditional models concatenate a label embedding to z in G and add a projection
term ⟨embed(y), φ(x)⟩ to the critic (Miyato & Koyama 2018).
"""
from __future__ import annotations

import math
import re
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gancli.errors import GancliError
from gancli.nn import ClassProjection, DiscriminatorResBlock, GeneratorResBlock

CONV_RESOLUTIONS = (16, 32, 64, 128)
DEFAULT_WIDTH = {"mlp": 512, "dcgan": 64, "resnet": 128}


def check_conv_resolution(arch: str, resolution: int) -> int:
    """Number of ×2 stages between 4×4 and ``resolution``; a clear error for unsupported sides."""
    if resolution not in CONV_RESOLUTIONS:
        raise GancliError(
            f"the {arch} arch makes square images of side {', '.join(map(str, CONV_RESOLUTIONS))}; got {resolution} "
            f"(use --resolution 32, or arch=mlp for other sizes)"
        )
    return int(math.log2(resolution // 4))


def glorot_(weight: Tensor, gain: float = 1.0) -> None:
    nn.init.xavier_uniform_(weight, gain=gain)


def _critic_norm(kind: str, channels: int, *, conv: bool) -> nn.Module:
    if kind == "none":
        return nn.Identity()
    if kind == "layer":
        # one group = layer norm over (C, H, W) with a per-channel affine, as tflib's Layernorm
        return nn.GroupNorm(1, channels) if conv else nn.LayerNorm(channels)
    if kind == "batch":
        return nn.BatchNorm2d(channels) if conv else nn.BatchNorm1d(channels)
    raise ValueError(f"unknown critic normalization {kind!r}")


class _LabelInput(nn.Module):
    """Concatenates a learned label embedding to z (conditional G); identity when unconditional."""

    def __init__(self, z_dim: int, num_classes: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_classes, z_dim) if num_classes else None
        self.out_dim = 2 * z_dim if num_classes else z_dim

    def forward(self, z: Tensor, y: Optional[Tensor]) -> Tensor:
        if self.embed is None:
            return z
        if y is None:
            raise ValueError("this conditional generator needs class labels y")
        return torch.cat([z, self.embed(y)], dim=1)


def _projection(features: int, num_classes: int) -> ClassProjection:
    """⟨embed(y), φ(x)⟩ added to the critic's score (gancli.nn.ClassProjection, N(0, 0.02) embedding)."""
    return ClassProjection(features, num_classes)


def _finish(score: Tensor, features: Tensor, return_features: bool):
    return (score, features) if return_features else score


# ---------------------------------------------------------------- MLP (WGAN-GP toy networks)


class MLPGenerator(nn.Module):
    def __init__(self, z_dim: int, width: int, layers: int, out_shape: tuple[int, ...], *, images: bool,
                 num_classes: int = 0, scale: float = 1.0) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.scale = scale
        self.num_classes = num_classes
        self.out_shape = tuple(out_shape)
        self.images = images
        self.input = _LabelInput(z_dim, num_classes)
        dims = [self.input.out_dim] + [width] * layers
        hidden: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            linear = nn.Linear(a, b)
            nn.init.kaiming_uniform_(linear.weight, nonlinearity="relu")
            nn.init.zeros_(linear.bias)
            hidden += [linear, nn.ReLU()]
        self.hidden = nn.Sequential(*hidden)
        self.output = nn.Linear(width, math.prod(self.out_shape))
        glorot_(self.output.weight)
        nn.init.zeros_(self.output.bias)

    def forward(self, z: Tensor, y: Optional[Tensor] = None) -> Tensor:
        x = self.output(self.hidden(self.input(z, y)))
        if self.images:
            x = torch.tanh(x)
        elif self.scale != 1.0:
            x = x * self.scale
        return x.view(x.shape[0], *self.out_shape)


class MLPCritic(nn.Module):
    def __init__(self, in_dim: int, width: int, layers: int, norm: str = "none", num_classes: int = 0,
                 scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale
        dims = [in_dim] + [width] * layers
        hidden: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            linear = nn.Linear(a, b)
            nn.init.kaiming_uniform_(linear.weight, nonlinearity="relu")
            nn.init.zeros_(linear.bias)
            hidden += [linear, _critic_norm(norm, b, conv=False), nn.ReLU()]
        self.hidden = nn.Sequential(*hidden)
        self.output = nn.Linear(width, 1)
        glorot_(self.output.weight)
        nn.init.zeros_(self.output.bias)
        self.projection = _projection(width, num_classes)

    def forward(self, x: Tensor, y: Optional[Tensor] = None, return_features: bool = False):
        h = self.hidden(x.flatten(1) / self.scale if self.scale != 1.0 else x.flatten(1))
        score = self.projection(self.output(h).squeeze(1), h, y)
        return _finish(score, h, return_features)


# ---------------------------------------------------------------- DCGAN-like (WGAN-GP gan_cifar.py)


class DCGANGenerator(nn.Module):
    """z → linear to 4×4×(w·2^(k−1)) → k transposed 5×5 convs ×2, BN+ReLU, tanh on the output."""

    def __init__(self, z_dim: int, width: int, channels: int, resolution: int, num_classes: int = 0) -> None:
        super().__init__()
        stages = check_conv_resolution("dcgan", resolution)
        self.z_dim = z_dim
        self.num_classes = num_classes
        self.input = _LabelInput(z_dim, num_classes)
        self.base = width * 2 ** (stages - 1)
        self.fc = nn.Linear(self.input.out_dim, 16 * self.base)
        glorot_(self.fc.weight)
        self.fc_norm = nn.BatchNorm1d(16 * self.base)
        layers: list[nn.Module] = []
        c = self.base
        for i in range(stages):
            last = i == stages - 1
            out = channels if last else c // 2
            # padding 2 + output_padding 1 doubles the side exactly, as a 'SAME' 5×5 deconvolution
            deconv = nn.ConvTranspose2d(c, out, 5, stride=2, padding=2, output_padding=1)
            glorot_(deconv.weight, 1.0 if last else math.sqrt(2.0))
            nn.init.zeros_(deconv.bias)
            layers.append(deconv)
            layers += [nn.Tanh()] if last else [nn.BatchNorm2d(out), nn.ReLU()]
            c = out
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, y: Optional[Tensor] = None) -> Tensor:
        h = F.relu(self.fc_norm(self.fc(self.input(z, y))))
        return self.net(h.view(h.shape[0], self.base, 4, 4))


class DCGANCritic(nn.Module):
    """k strided 5×5 convs doubling channels, LeakyReLU(0.2), optional norm (not on the input layer), linear out."""

    def __init__(self, width: int, channels: int, resolution: int, norm: str = "none", num_classes: int = 0) -> None:
        super().__init__()
        stages = check_conv_resolution("dcgan", resolution)
        layers: list[nn.Module] = []
        c_in, c = channels, width
        for i in range(stages):
            conv = nn.Conv2d(c_in, c, 5, stride=2, padding=2)
            glorot_(conv.weight, math.sqrt(2.0))
            nn.init.zeros_(conv.bias)
            layers.append(conv)
            if i > 0:
                layers.append(_critic_norm(norm, c, conv=True))
            layers.append(nn.LeakyReLU(0.2))
            c_in, c = c, c * 2
        self.features = nn.Sequential(*layers)
        self.output = nn.Linear(16 * c_in, 1)
        glorot_(self.output.weight)
        nn.init.zeros_(self.output.bias)
        self.projection = _projection(c_in, num_classes)

    def forward(self, x: Tensor, y: Optional[Tensor] = None, return_features: bool = False):
        h = self.features(x)
        pooled = h.sum(dim=(2, 3))
        score = self.projection(self.output(h.flatten(1)).squeeze(1), pooled, y)
        return _finish(score, pooled, return_features)


# ---------------------------------------------------------------- ResNet (WGAN-GP gan_cifar_resnet.py)


def _conv(c_in: int, c_out: int, k: int, *, he: bool = True) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, k, padding=k // 2)
    glorot_(conv.weight, math.sqrt(2.0) if he else 1.0)
    nn.init.zeros_(conv.bias)
    return conv


# The ResNet blocks are gancli.nn's (pre-activation, nearest-neighbour upsampling, mean-pool
# downsampling, Glorot init with gain √2 on residual convs and 1 on shortcuts, as tflib's
# he_init): layer for layer gan_cifar_resnet.py's ResidualBlock and OptimizedResBlockDisc1.
# Checkpoints of gancli 0.1 named their convs one level deeper (conv1.conv.weight); the
# networks below read those names too.
_OLD_BLOCK_KEY = re.compile(r"^(blocks\.\d+\.(?:conv1|conv2|shortcut))\.conv\.")


def _accept_old_block_names(module, state_dict, prefix, *args) -> None:
    for key in [k for k in state_dict if k.startswith(prefix)]:
        renamed = prefix + _OLD_BLOCK_KEY.sub(r"\1.", key[len(prefix):])
        if renamed != key:
            state_dict[renamed] = state_dict.pop(key)


class ResNetGenerator(nn.Module):
    """z → linear 4×4×w → up blocks to the resolution → BN, ReLU, conv3 → tanh (w = 128 in the paper)."""

    def __init__(self, z_dim: int, width: int, channels: int, resolution: int, num_classes: int = 0) -> None:
        super().__init__()
        stages = check_conv_resolution("resnet", resolution)
        self.z_dim = z_dim
        self.num_classes = num_classes
        self.width = width
        self.input = _LabelInput(z_dim, num_classes)
        self.fc = nn.Linear(self.input.out_dim, 16 * width)
        glorot_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)
        self.blocks = nn.Sequential(*[GeneratorResBlock(width, width, norm="batch") for _ in range(stages)])
        self.out_norm = nn.BatchNorm2d(width)
        self.out_conv = _conv(width, channels, 3, he=False)
        self.register_load_state_dict_pre_hook(_accept_old_block_names)

    def forward(self, z: Tensor, y: Optional[Tensor] = None) -> Tensor:
        h = self.fc(self.input(z, y)).view(z.shape[0], self.width, 4, 4)
        h = self.blocks(h)
        return torch.tanh(self.out_conv(F.relu(self.out_norm(h))))


class ResNetCritic(nn.Module):
    """First block (↓2), down blocks to 8×8, two plain blocks, ReLU, global mean pool, linear.

    At 32×32 this is the paper's critic: 32 → 16 → 8, then two 8×8 blocks. No BatchNorm.
    """

    def __init__(self, width: int, channels: int, resolution: int, norm: str = "none", num_classes: int = 0) -> None:
        super().__init__()
        stages = check_conv_resolution("resnet", resolution)
        blocks: list[nn.Module] = [DiscriminatorResBlock(channels, width, first=True, spectral_norm=False)]
        blocks += [DiscriminatorResBlock(width, width, downsample=True, spectral_norm=False, norm=norm)
                   for _ in range(stages - 2)]
        blocks += [DiscriminatorResBlock(width, width, downsample=False, spectral_norm=False, norm=norm)
                   for _ in range(2)]
        self.blocks = nn.Sequential(*blocks)
        self.output = nn.Linear(width, 1)
        glorot_(self.output.weight)
        nn.init.zeros_(self.output.bias)
        self.projection = _projection(width, num_classes)
        self.register_load_state_dict_pre_hook(_accept_old_block_names)

    def forward(self, x: Tensor, y: Optional[Tensor] = None, return_features: bool = False):
        pooled = F.relu(self.blocks(x)).mean(dim=(2, 3))
        score = self.projection(self.output(pooled).squeeze(1), pooled, y)
        return _finish(score, pooled, return_features)
