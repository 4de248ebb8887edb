"""A tiny W-space family with a shared class embedding, to test the generic sampling features.

Its generator follows the optional protocols of docs/plugins.md: a W space (mapping with
w_avg and ψ/cutoff truncation, synthesis with noise modes, layer_resolutions) and class
mixtures (``y`` as class weights through one shared embedding).
"""
from __future__ import annotations

from typing import ClassVar, Optional

import torch
from pydantic import BaseModel, ConfigDict
from torch import Tensor, nn

from gancli.objective import GAN, AdversarialObjective, OptimizerSettings
from gancli.plugins import Family

FAMILY = Family(
    name="wspace-toy",
    summary="a tiny W-space generator with a shared class embedding (tests only)",
    config="_sampling_family:ToyConfig",
    build="_sampling_family:build",
    check_settings={},
    check_resolution=8,
)


class ToyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    train_defaults: ClassVar[dict] = {"batch_size": 8}
    conditional: Optional[bool] = None


class ToyGenerator(nn.Module):
    truncation_space = "w"
    accepts_class_mixtures = True

    def __init__(self, channels: int, resolution: int, num_classes: int) -> None:
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws, self.num_classes = 6, 5, 4, num_classes
        self.layer_resolutions = [4, 4, 8, 8]
        self.shape = (channels, resolution, resolution)
        self.embed = nn.Linear(num_classes, self.w_dim, bias=False) if num_classes else None  # the shared embedding
        self.map = nn.Linear(self.z_dim, self.w_dim)
        self.layers = nn.ModuleList(nn.Linear(self.w_dim, channels * resolution * resolution) for _ in range(4))
        self.noise_strength = nn.Parameter(torch.full((), 0.5))
        self.register_buffer("w_avg", torch.randn(self.w_dim))
        self.register_buffer("noise_const", torch.randn(self.shape))

    def _class_vector(self, y: Tensor) -> Tensor:
        weights = y if y.is_floating_point() else nn.functional.one_hot(y, self.num_classes).float()
        return self.embed(weights)

    def mapping(self, z: Tensor, y: Optional[Tensor] = None, *, psi: float = 1.0, cutoff: Optional[int] = None):
        w = self.map(z)
        if self.embed is not None:
            w = w + self._class_vector(y)
        w = w.unsqueeze(1).repeat(1, self.num_ws, 1)
        if psi != 1.0:
            layers = slice(0, cutoff)
            w[:, layers] = self.w_avg + psi * (w[:, layers] - self.w_avg)
        return w

    def synthesis(self, w: Tensor, *, noise_mode: str = "random") -> Tensor:
        x = sum(layer(w[:, i]) for i, layer in enumerate(self.layers)).view(-1, *self.shape)  # -1: traced graphs keep the batch free
        if noise_mode == "random":
            x = x + self.noise_strength * torch.randn_like(x)
        elif noise_mode == "const":
            x = x + self.noise_strength * self.noise_const
        return torch.tanh(x)

    def forward(self, z, y=None, *, truncation=None, truncation_cutoff=None, noise_mode="random"):
        psi = 1.0 if truncation is None else truncation
        return self.synthesis(self.mapping(z, y, psi=psi, cutoff=truncation_cutoff), noise_mode=noise_mode)


class ToyDiscriminator(nn.Module):
    def __init__(self, channels: int, resolution: int) -> None:
        super().__init__()
        self.linear = nn.Linear(channels * resolution * resolution, 1)

    def forward(self, x, y=None, return_features=False):
        out = self.linear(x.flatten(1)).squeeze(1)
        return (out, x.flatten(1)) if return_features else out


def build(config: ToyConfig, spec) -> GAN:
    num_classes = spec.num_classes if (config.conditional is not False and spec.num_classes > 1) else 0
    G = ToyGenerator(spec.channels, spec.resolution, num_classes)
    D = ToyDiscriminator(spec.channels, spec.resolution)
    return GAN(G, D, AdversarialObjective(optimizer=OptimizerSettings()))
