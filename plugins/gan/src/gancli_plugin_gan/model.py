"""MLP generator and discriminator (Goodfellow et al. 2014) with the Improved-GAN options.

Both work on 2-D points and on small images, which they flatten: G ends in tanh for
images (pixels in [-1, 1]) and in a plain linear layer for points (toy data such as
grid25 spans [-4, 4]).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from gancli.data.spec import DataSpec
from gancli.errors import GancliError
from gancli.nn.improved import MinibatchDiscrimination, VirtualBatchNorm, joint_vbn_reference, recording_vbn_reference
from gancli.objective import GAN, OptimizerSettings
from gancli_plugin_gan.objective import ImprovedGANObjective


def make_activation(name: str) -> nn.Module:
    if name == "tanh":
        return nn.Tanh()
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(0.2)
    raise ValueError(f"unknown activation {name!r}")


class Generator(nn.Module):
    """z → [Linear → (BatchNorm | VirtualBatchNorm) → activation] × layers → Linear (→ tanh for images).

    With virtual batch norm the fixed reference latents are a buffer (so a checkpoint
    carries them), and every forward runs them through the current weights together with
    the batch (Salimans et al. 2016): in training the gradient flows through the reference
    statistics, and in eval mode (an EMA copy included) they are those of the weights used.
    """

    def __init__(
        self,
        *,
        z_dim: int,
        hidden: int,
        layers: int,
        activation: str,
        norm: str,
        out_shape: tuple[int, ...],
        images: bool,
        vbn_reference_size: int = 128,
    ) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.num_classes = 0
        self.out_shape = tuple(out_shape)
        blocks: list[nn.Module] = []
        width = z_dim
        for _ in range(layers):
            blocks.append(nn.Linear(width, hidden))
            if norm == "batch":
                blocks.append(nn.BatchNorm1d(hidden))
            elif norm == "virtual":
                blocks.append(VirtualBatchNorm(hidden))
            blocks.append(make_activation(activation))
            width = hidden
        blocks.append(nn.Linear(width, math.prod(self.out_shape)))
        if images:
            blocks.append(nn.Tanh())
        self.net = nn.Sequential(*blocks)
        self.virtual_batch_norm = norm == "virtual"
        if self.virtual_batch_norm:
            self.register_buffer("vbn_reference_z", torch.randn(vbn_reference_size, z_dim))
            self.refresh_reference()

    @torch.no_grad()
    def refresh_reference(self) -> None:
        """Record the VBN reference statistics of the fixed reference latents through the current weights."""
        with recording_vbn_reference(self.net):
            self.net(self.vbn_reference_z)

    def forward(self, z: Tensor, y: Optional[Tensor] = None) -> Tensor:
        if self.virtual_batch_norm:
            n = len(self.vbn_reference_z)
            with joint_vbn_reference(self.net, n):
                out = self.net(torch.cat([self.vbn_reference_z.to(z.dtype), z]))[n:]
            return out.view(z.shape[0], *self.out_shape)
        return self.net(z).view(z.shape[0], *self.out_shape)


class Discriminator(nn.Module):
    """x (flattened) → [Linear → activation → dropout] × layers → (minibatch discrimination) → Linear.

    Returns one logit per example, or K class logits for the semi-supervised GAN.
    ``return_features=True`` also returns the last hidden layer (the features that
    feature matching matches); labels ``y`` are not used: this D is unconditional.
    """

    def __init__(
        self,
        *,
        in_features: int,
        hidden: int,
        layers: int,
        activation: str,
        dropout: float = 0.0,
        minibatch_kernels: int = 0,
        minibatch_kernel_dim: int = 5,
        num_outputs: int = 1,
    ) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        width = in_features
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), make_activation(activation)]
            if dropout > 0:
                blocks.append(nn.Dropout(dropout))
            width = hidden
        self.trunk = nn.Sequential(*blocks)
        self.minibatch = (
            MinibatchDiscrimination(width, minibatch_kernels, minibatch_kernel_dim) if minibatch_kernels else None
        )
        self.head = nn.Linear(self.minibatch.out_features if self.minibatch else width, num_outputs)
        self.num_outputs = num_outputs

    def forward(self, x: Tensor, y: Optional[Tensor] = None, return_features: bool = False):
        features = self.trunk(x.flatten(1))
        out = self.head(self.minibatch(features) if self.minibatch is not None else features)
        if self.num_outputs == 1:
            out = out.squeeze(1)
        return (out, features) if return_features else out


def init_weights(module: nn.Module, gain: float) -> None:
    """Orthogonal weights with ``gain`` and zero biases for every Linear layer (the unrolled-GAN demo's init)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.orthogonal_(m.weight, gain=gain)
            nn.init.zeros_(m.bias)


def build(config, spec: DataSpec) -> GAN:
    if spec.kind == "points":
        out_shape, images = (spec.dim,), False
    else:
        if spec.channels not in (1, 3):
            raise GancliError(f"gan makes 1- or 3-channel images; the data has {spec.channels}")
        out_shape, images = (spec.channels, spec.resolution, spec.resolution), True
    num_outputs = 1
    if config.semi_supervised:
        if spec.num_classes < 2:
            raise GancliError(
                "semi_supervised=true needs labelled data with at least 2 classes "
                "(e.g. --data fashion-mnist --set data.labeled=100)"
            )
        num_outputs = spec.num_classes
    G = Generator(
        z_dim=config.z_dim, hidden=config.g_hidden, layers=config.g_layers, activation=config.g_activation,
        norm=config.g_norm, out_shape=out_shape, images=images, vbn_reference_size=config.vbn_reference_size,
    )
    D = Discriminator(
        in_features=math.prod(out_shape), hidden=config.d_hidden, layers=config.d_layers,
        activation=config.d_activation, dropout=config.d_dropout,
        minibatch_kernels=config.mbd_kernels if config.minibatch_discrimination else 0,
        minibatch_kernel_dim=config.mbd_kernel_dim, num_outputs=num_outputs,
    )
    if config.init == "orthogonal":
        init_weights(G, config.init_gain)
        init_weights(D, config.init_gain)
    if G.virtual_batch_norm:
        G.refresh_reference()  # the reference statistics of the initialized weights
    objective = ImprovedGANObjective(
        loss=config.loss,
        optimizer=OptimizerSettings(name="adam", lr_g=config.lr_g, lr_d=config.lr_d, betas=(config.beta1, config.beta2)),
        n_critic=config.n_critic,
        real_label=config.real_label,
        feature_matching=config.feature_matching,
        feature_matching_adversarial=config.feature_matching_adversarial,
        feature_matching_target=config.feature_matching_target,
        historical_averaging=config.historical_averaging,
        semi_supervised=config.semi_supervised,
        unsupervised_weight=config.unsupervised_weight,
        supervised_batch=config.supervised_batch,
        supervised_pool=config.supervised_pool,
    )
    return GAN(G, D, objective)
