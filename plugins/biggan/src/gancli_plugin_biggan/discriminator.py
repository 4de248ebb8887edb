"""BigGAN and BigGAN-deep discriminators (BigGAN-PyTorch ``BigGAN.py``/``BigGANdeep.py`` ``Discriminator``).

Residual down-sampling blocks, all convs spectrally normalized; self-attention after the block
(BigGAN) or stage (BigGAN-deep) at ``attention`` px; ReLU and a sum over positions; then the
projection head ψ(φ) + ⟨embed(y), φ⟩ with SN on both layers (:class:`gancli.nn.ProjectionHead`).

* BigGAN's blocks are the "wide" SAGAN/BigGAN blocks (hidden width = output width,
  ``D_wide=True``), the first one without the leading ReLU.
* BigGAN-deep starts with a 3×3 SN conv from the image and runs ``depth`` bottleneck blocks per
  resolution, the first of which widens and downsamples.
"""
from __future__ import annotations

from typing import Optional

from torch import Tensor, nn
from torch.nn import functional as F

from gancli.nn import DiscriminatorResBlock, ProjectionHead, SelfAttention, SNConv2d, init_weights

from gancli_plugin_biggan.architecture import attention_index, deep_discriminator_stages, discriminator_blocks
from gancli_plugin_biggan.deep_blocks import DeepDiscriminatorBlock


class _Discriminator(nn.Module):
    def _build_head(self, features: int, num_classes: int, init: str) -> None:
        self.num_classes = num_classes
        self.head = ProjectionHead(features, num_classes, spectral_norm=True, bias=True, init=init)

    def _features(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor, y: Optional[Tensor] = None, return_features: bool = False):
        # global sum pooling of the last ReLU, as SNGAN and BigGAN do
        features = F.relu(self._features(x)).sum(dim=(2, 3))
        out = self.head(features, y)
        return (out, features) if return_features else out


class BigGANDiscriminator(_Discriminator):
    def __init__(
        self, *, ch: int, resolution: int, image_channels: int, num_classes: int, attention: int, init: str = "orthogonal",
    ) -> None:
        super().__init__()
        blocks = discriminator_blocks(resolution, ch, image_channels)
        self.blocks = nn.ModuleList(
            DiscriminatorResBlock(
                b.in_ch, b.out_ch, downsample=b.resample, first=index == 0, spectral_norm=True, hidden_ch=b.out_ch,
                init=init,
            )
            for index, b in enumerate(blocks)
        )
        self.attention_after = attention_index(blocks, attention, "D")
        self.attention = (
            SelfAttention(blocks[self.attention_after].out_ch, spectral_norm=True, init=init)
            if self.attention_after is not None else None
        )
        self._build_head(blocks[-1].out_ch, num_classes, init)
        init_weights(self, init)

    def _features(self, x: Tensor) -> Tensor:
        h = x
        for index, block in enumerate(self.blocks):
            h = block(h)
            if index == self.attention_after:
                h = self.attention(h)
        return h


class BigGANDeepDiscriminator(_Discriminator):
    def __init__(
        self, *, ch: int, resolution: int, image_channels: int, num_classes: int, attention: int, depth: int = 2,
        init: str = "orthogonal",
    ) -> None:
        super().__init__()
        stages = deep_discriminator_stages(resolution, ch)
        self.stem = SNConv2d(image_channels, stages[0].in_ch, 3, padding=1)
        blocks, stage_ends = [], []
        for stage in stages:
            for j in range(depth):
                first = j == 0
                blocks.append(DeepDiscriminatorBlock(
                    stage.in_ch if first else stage.out_ch, stage.out_ch, downsample=stage.resample and first,
                ))
            stage_ends.append(len(blocks) - 1)
        self.blocks = nn.ModuleList(blocks)
        stage_index = attention_index(stages, attention, "D")
        self.attention_after = stage_ends[stage_index] if stage_index is not None else None
        self.attention = (
            SelfAttention(stages[stage_index].out_ch, spectral_norm=True, init=init) if stage_index is not None else None
        )
        self._build_head(stages[-1].out_ch, num_classes, init)
        init_weights(self, init)

    def _features(self, x: Tensor) -> Tensor:
        h = self.stem(x)
        for index, block in enumerate(self.blocks):
            h = block(h)
            if index == self.attention_after:
                h = self.attention(h)
        return h
