"""BigGAN and BigGAN-deep generators (BigGAN-PyTorch ``BigGAN.py``/``BigGANdeep.py`` ``Generator``).

Shared by both: a spectrally normalized linear layer makes a 4×4 tensor; residual up-sampling
blocks whose conditional BatchNorms (gain 1 + γ(c), bias β(c), :class:`gancli.nn.ConditionalBatchNorm2d`
in vector mode, SN on the projections) read a condition vector c built from ONE shared class
embedding ``G.shared`` (no SN); self-attention after the stage at ``attention`` px; and
BatchNorm → ReLU → SN conv3 → tanh at the output.

* BigGAN (hierarchical latents, "skip-z", paper §4 and appendix B): z is split into
  len(blocks) + 1 equal chunks; chunk 0 feeds the linear layer and block i reads
  c_i = [shared(y), z_{i+1}].
* BigGAN-deep: the linear layer reads [shared(y), z] and every block reads that same full
  vector; two bottleneck blocks per resolution (:mod:`gancli_plugin_biggan.deep_blocks`).

``y`` is class indices (N,) or float class weights (N, num_classes), whose shared embedding is
the weighted sum of the class embeddings (``accepts_class_mixtures``).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from gancli.nn import GeneratorResBlock, SelfAttention, SNConv2d, SNLinear, init_weights

from gancli_plugin_biggan.architecture import BOTTOM_WIDTH, attention_index, generator_stages
from gancli_plugin_biggan.deep_blocks import DeepGeneratorBlock
from gancli_plugin_biggan.shared_embedding import check_labels, class_vector


class _Generator(nn.Module):
    """What both generators share: the class embedding, the attention slot and the output layer."""

    truncation_space = "z"

    def __init__(self, *, z_dim: int, num_classes: int, shared_dim: int, resolution: int) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.num_classes = num_classes
        self.shared_dim = shared_dim if num_classes else 0
        self.resolution = resolution
        self.accepts_class_mixtures = num_classes > 0
        # one embedding for every block (BigGAN-PyTorch: nn.Embedding, never spectrally normalized)
        self.shared: Optional[nn.Embedding] = nn.Embedding(num_classes, shared_dim) if num_classes else None

    def _build_output(self, channels: int, image_channels: int) -> None:
        self.output_norm = nn.BatchNorm2d(channels)
        self.output_conv = SNConv2d(channels, image_channels, 3, padding=1)

    def class_embedding(self, y: Optional[Tensor], batch: int) -> Optional[Tensor]:
        """shared(y) for indices, Σ_k y_k·shared(k) for class weights; None when unconditional."""
        if self.shared is None:
            return None
        return class_vector(self.shared, check_labels(y, batch))

    def _check_latents(self, z: Tensor) -> None:
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (N, {self.z_dim}), got {tuple(z.shape)}")

    def _to_image(self, h: Tensor) -> Tensor:
        return torch.tanh(self.output_conv(F.relu(self.output_norm(h))))


class BigGANGenerator(_Generator):
    """BigGAN's G; with ``hierarchical=False`` all of z feeds the linear layer and the blocks read shared(y) alone."""

    def __init__(
        self,
        *,
        z_dim: int,
        num_classes: int,
        shared_dim: int,
        ch: int,
        resolution: int,
        image_channels: int,
        attention: int,
        hierarchical: bool = True,
        init: str = "orthogonal",
    ) -> None:
        super().__init__(z_dim=z_dim, num_classes=num_classes, shared_dim=shared_dim, resolution=resolution)
        stages = generator_stages(resolution, ch)
        self.hierarchical = hierarchical
        self.num_chunks = len(stages) + 1 if hierarchical else 1
        if z_dim % self.num_chunks:
            raise ValueError(f"z_dim {z_dim} does not split into {self.num_chunks} equal chunks")
        self.chunk_size = z_dim // self.num_chunks
        cond_dim = self.shared_dim + (self.chunk_size if hierarchical else 0)
        self.cond_dim = cond_dim
        self.linear = SNLinear(self.chunk_size, stages[0].in_ch * BOTTOM_WIDTH**2)
        self.blocks = nn.ModuleList(
            GeneratorResBlock(
                s.in_ch, s.out_ch, norm="vector" if cond_dim else "batch", cond_dim=cond_dim, upsample=True,
                spectral_norm=True, init=init,
            )
            for s in stages
        )
        self.attention_after = attention_index(stages, attention, "G")
        self.attention = (
            SelfAttention(stages[self.attention_after].out_ch, spectral_norm=True, init=init)
            if self.attention_after is not None else None
        )
        self._build_output(stages[-1].out_ch, image_channels)
        init_weights(self, init)

    def conditions(self, z: Tensor, y: Optional[Tensor]) -> tuple[Tensor, list[Optional[Tensor]]]:
        """The linear layer's input and each block's condition vector."""
        self._check_latents(z)
        embedding = self.class_embedding(y, z.shape[0])
        if not self.hierarchical:
            return z, [embedding] * len(self.blocks)
        first, *chunks = z.split(self.chunk_size, dim=1)
        if embedding is None:
            return first, list(chunks)
        return first, [torch.cat([embedding, chunk], dim=1) for chunk in chunks]

    def forward(self, z: Tensor, y: Optional[Tensor] = None) -> Tensor:
        first, conditions = self.conditions(z, y)
        h = self.linear(first).view(z.shape[0], -1, BOTTOM_WIDTH, BOTTOM_WIDTH)
        for index, (block, cond) in enumerate(zip(self.blocks, conditions)):
            h = block(h, cond)
            if index == self.attention_after:
                h = self.attention(h)
        return self._to_image(h)


class BigGANDeepGenerator(_Generator):
    """BigGAN-deep's G: ``depth`` bottleneck blocks per resolution, the last of which narrows and upsamples."""

    def __init__(
        self,
        *,
        z_dim: int,
        num_classes: int,
        shared_dim: int,
        ch: int,
        resolution: int,
        image_channels: int,
        attention: int,
        depth: int = 2,
        init: str = "orthogonal",
    ) -> None:
        super().__init__(z_dim=z_dim, num_classes=num_classes, shared_dim=shared_dim, resolution=resolution)
        stages = generator_stages(resolution, ch)
        self.cond_dim = self.shared_dim + z_dim
        self.linear = SNLinear(self.cond_dim, stages[0].in_ch * BOTTOM_WIDTH**2)
        blocks, self.stage_ends = [], []
        for stage in stages:
            for j in range(depth):
                last = j == depth - 1
                blocks.append(DeepGeneratorBlock(
                    stage.in_ch, stage.out_ch if last else stage.in_ch, cond_dim=self.cond_dim, upsample=last, init=init,
                ))
            self.stage_ends.append(len(blocks) - 1)
        self.blocks = nn.ModuleList(blocks)
        stage_index = attention_index(stages, attention, "G")
        self.attention_after = self.stage_ends[stage_index] if stage_index is not None else None
        self.attention = (
            SelfAttention(stages[stage_index].out_ch, spectral_norm=True, init=init) if stage_index is not None else None
        )
        self._build_output(stages[-1].out_ch, image_channels)
        init_weights(self, init)

    def condition(self, z: Tensor, y: Optional[Tensor]) -> Tensor:
        """[shared(y), z]: the linear layer's input and every block's condition vector."""
        self._check_latents(z)
        embedding = self.class_embedding(y, z.shape[0])
        return z if embedding is None else torch.cat([embedding, z], dim=1)

    def forward(self, z: Tensor, y: Optional[Tensor] = None) -> Tensor:
        cond = self.condition(z, y)
        h = self.linear(cond).view(z.shape[0], -1, BOTTOM_WIDTH, BOTTOM_WIDTH)
        for index, block in enumerate(self.blocks):
            h = block(h, cond)
            if index == self.attention_after:
                h = self.attention(h)
        return self._to_image(h)
