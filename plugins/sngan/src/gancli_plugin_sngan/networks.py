"""The SNGAN/SAGAN ResNet generator and discriminator, assembled from gancli.nn's layers.

Generator (SNGAN paper, appendix B, table 4; pfnet-research/sngan_projection
``gen_models/resnet_32.py``): z → linear → 4×4 → up-sampling residual blocks
(conditional BatchNorm by class when conditional, else BatchNorm) → BatchNorm → ReLU →
3×3 conv → tanh. Discriminator (``dis_models/snresnet_32.py``): an "optimized" residual
block on the image, residual blocks, ReLU, a sum over positions, and the projection head
ψ(φ(x)) + ⟨embed(y), φ(x)⟩ (Miyato & Koyama 2018). SAGAN (brain-research/self-attention-gan
``generator_test``/``discriminator_test``) puts a self-attention block after the G block
and the D block whose output has side ``attention_at``, and spectral norm in G as well
(the input linear layer, every block conv, the attention convs and the output conv; its
class-conditional gains and biases are not normalized).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from gancli.nn import (
    DiscriminatorResBlock,
    GeneratorResBlock,
    ProjectionHead,
    SelfAttention,
    init_weights,
    spectral_norm as apply_sn,
)

from gancli_plugin_sngan.layouts import Layout

BOTTOM = 4  # the generator's first feature map is 4×4 at every resolution


def _attention_index(resolutions: tuple[int, ...], side: Optional[int]) -> Optional[int]:
    """The first block whose output has ``side`` (the caller checked that one exists)."""
    if side is None:
        return None
    return resolutions.index(side)


class ResNetGenerator(nn.Module):
    """z (and class y) → images in [-1, 1] of ``channels`` × ``resolution``²."""

    def __init__(
        self,
        *,
        layout: Layout,
        z_dim: int,
        g_ch: int,
        channels: int,
        num_classes: int = 0,
        spectral_norm: bool = False,
        attention_at: Optional[int] = None,
        init: str = "xavier_uniform",
        residual_gain: Optional[float] = None,
    ) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.num_classes = num_classes
        # class mixtures: conditional BatchNorm takes the weighted sum of the classes' gains and biases
        self.accepts_class_mixtures = num_classes > 0
        widths = [g_ch * m for m in layout.generator]
        self.bottom_channels = widths[0]
        self.linear = init_weights(nn.Linear(z_dim, BOTTOM * BOTTOM * widths[0]), init)
        norm = "class" if num_classes else "batch"
        self.blocks = nn.ModuleList(
            GeneratorResBlock(c_in, c_out, norm=norm, num_classes=num_classes, upsample=True,
                              spectral_norm=spectral_norm, init=init, residual_gain=residual_gain)
            for c_in, c_out in zip(widths[:-1], widths[1:])
        )
        self.attention_after = _attention_index(layout.generator_resolutions(), attention_at)
        self.attention: Optional[SelfAttention] = None
        if self.attention_after is not None:
            self.attention = SelfAttention(widths[self.attention_after + 1], spectral_norm, init=init)
        # the last normalization is unconditional in both references
        self.out_norm = nn.BatchNorm2d(widths[-1])
        self.out_conv = init_weights(nn.Conv2d(widths[-1], channels, 3, padding=1), init)
        if spectral_norm:
            apply_sn(self.linear)
            apply_sn(self.out_conv)

    def forward(self, z: Tensor, y: Optional[Tensor] = None) -> Tensor:
        if self.num_classes and y is None:
            raise ValueError("this conditional generator needs class labels y")
        y = y if self.num_classes else None
        h = self.linear(z).view(z.shape[0], self.bottom_channels, BOTTOM, BOTTOM)
        for index, block in enumerate(self.blocks):
            h = block(h, y)
            if index == self.attention_after:
                h = self.attention(h)
        return torch.tanh(self.out_conv(F.relu(self.out_norm(h))))


class ResNetDiscriminator(nn.Module):
    """Images (and class y) → one score per image; ``return_features`` also gives φ(x), the pooled features.

    ``wide``: the hidden channels of each block are its output channels (the released SAGAN
    and BigGAN) rather than its input channels (sngan_projection); the 32 px layout keeps one
    width, so there they agree. ``head_bias``: ψ has a bias (sngan_projection at 64/128 px,
    SAGAN, StudioGAN; not sngan_projection at 32 px).
    """

    def __init__(
        self,
        *,
        layout: Layout,
        resolution: int,
        d_ch: int,
        channels: int,
        num_classes: int = 0,
        spectral_norm: bool = True,
        attention_at: Optional[int] = None,
        init: str = "xavier_uniform",
        wide: bool = False,
        head_bias: bool = True,
        residual_gain: Optional[float] = None,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        widths = [d_ch * m for m in layout.discriminator]
        blocks = [DiscriminatorResBlock(channels, widths[0], downsample=layout.downsample[0], first=True,
                                        spectral_norm=spectral_norm, init=init, residual_gain=residual_gain)]
        for c_in, c_out, down in zip(widths[:-1], widths[1:], layout.downsample[1:]):
            blocks.append(DiscriminatorResBlock(c_in, c_out, downsample=down, spectral_norm=spectral_norm,
                                                hidden_ch=c_out if wide else None, init=init,
                                                residual_gain=residual_gain))
        self.blocks = nn.ModuleList(blocks)
        self.attention_after = _attention_index(layout.discriminator_resolutions(resolution), attention_at)
        self.attention: Optional[SelfAttention] = None
        if self.attention_after is not None:
            self.attention = SelfAttention(widths[self.attention_after], spectral_norm, init=init)
        self.head = ProjectionHead(widths[-1], num_classes, spectral_norm=spectral_norm, bias=head_bias, init=init)

    def forward(self, x: Tensor, y: Optional[Tensor] = None, return_features: bool = False):
        h = x
        for index, block in enumerate(self.blocks):
            h = block(h)
            if index == self.attention_after:
                h = self.attention(h)
        features = F.relu(h).sum(dim=(2, 3))  # global sum pooling, as both references do
        out = self.head(features, y if self.num_classes else None)
        return (out, features) if return_features else out
