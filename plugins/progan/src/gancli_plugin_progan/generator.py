"""The Progressive GAN generator (Karras et al. 2018, Table 2 and Figure 2), grown one block at a time.

As ``G_paper`` in tkarras/progressive_growing_of_gans networks.py: z is pixel-normalised, a dense
layer makes a 4×4 map (He gain √2/4, "to match the original Theano implementation"), then each
resolution has two 3×3 convolutions (after a nearest-neighbour upsampling from the second block
on, fused with the first convolution: gancli_plugin_progan.resample), every one followed by
LeakyReLU 0.2 and pixel norm. A 1×1 "to-RGB" convolution (gain 1, no
activation) turns each resolution's features into an image. All layers use the equalized learning
rate (gancli.nn.EqualizedConv2d/EqualizedLinear).

While a block fades in, the image is ``fade_in(α, upsampled previous to-RGB output, new to-RGB
output)`` (the reference's ``lerp_clip(img, upscale2d(images_out), lod_in − lod)`` with α = 1 −
(lod_in − lod)). α is a buffer, so a checkpoint and the EMA copy carry it.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gancli.nn import EqualizedConv2d, EqualizedLinear, PixelNorm, fade_in, upscale2d

from gancli_plugin_progan.resample import UpsampleConv2d
from gancli_plugin_progan.widths import GrowingBlocks, block_name

LEAKY_SLOPE = 0.2  # the paper: leaky ReLU with leakiness 0.2 in both networks
FIRST_DENSE_GAIN = 2**0.5 / 4  # networks.py G_paper, 4×4 'Dense'


def _activate(x: Tensor, norm: PixelNorm) -> Tensor:
    return norm(F.leaky_relu(x, LEAKY_SLOPE))


class FirstGeneratorBlock(nn.Module):
    """z (pixel-normalised) → dense to a 4×4 map → conv 3×3, each with LeakyReLU and pixel norm."""

    def __init__(self, z_dim: int, channels: int):
        super().__init__()
        self.channels = channels
        # the bias is per channel (the reference adds it after the reshape to 4×4)
        self.dense = EqualizedLinear(z_dim, channels * 16, bias=False, gain=FIRST_DENSE_GAIN)
        self.dense_bias = nn.Parameter(torch.zeros(channels))
        self.conv = EqualizedConv2d(channels, channels, 3)
        self.norm = PixelNorm()

    def forward(self, z: Tensor) -> Tensor:
        x = self.dense(z).reshape(-1, self.channels, 4, 4) + self.dense_bias.reshape(1, -1, 1, 1)
        x = _activate(x, self.norm)
        return _activate(self.conv(x), self.norm)


class GeneratorBlock(nn.Module):
    """Upsample ×2 (nearest), then two conv 3×3 with LeakyReLU and pixel norm."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = UpsampleConv2d(in_channels, out_channels)
        self.conv1 = EqualizedConv2d(out_channels, out_channels, 3)
        self.norm = PixelNorm()

    def forward(self, x: Tensor) -> Tensor:
        x = _activate(self.conv0(x), self.norm)
        return _activate(self.conv1(x), self.norm)


class ProGANGenerator(GrowingBlocks, nn.Module):
    """G for images of ``target_resolution``; it starts with the 4×4 block and gains one per :meth:`grow`.

    ``forward(z)`` always returns images of the target resolution in [-1, 1] (the current
    resolution's image, nearest-upsampled, then clipped as the reference clips when it saves
    images), so sampling works at any phase. Training calls ``forward(z, current_resolution=True)``:
    the unclipped image at the resolution the network is at, as the reference trains on G's linear
    output.
    """

    def __init__(self, z_dim: int, channels: int, target_resolution: int, fmap_base: int, fmap_max: int):
        super().__init__()
        self.z_dim = z_dim
        self.num_classes = 0
        self.channels = channels
        self.target_resolution = target_resolution
        self.fmap_base, self.fmap_max = fmap_base, fmap_max
        self.latent_norm = PixelNorm()
        self.blocks = nn.ModuleDict()
        self.to_rgb = nn.ModuleDict()
        # weight of the newest block: 0 → 1 while it fades in, then 1
        self.register_buffer("alpha", torch.ones(()))
        self._add_block(4, FirstGeneratorBlock(z_dim, self._width(4)))

    def _add_block(self, resolution: int, block: nn.Module) -> None:
        self.blocks[block_name(resolution)] = block
        self.to_rgb[block_name(resolution)] = EqualizedConv2d(self._width(resolution), self.channels, 1, gain=1.0)

    def grow(self) -> None:
        """Add the block for twice the current resolution; the layers already trained are kept."""
        resolution = self.current_resolution
        if resolution >= self.target_resolution:
            raise ValueError(f"the generator is already at its target resolution {self.target_resolution}")
        self._add_block(2 * resolution, GeneratorBlock(self._width(resolution), self._width(2 * resolution)))

    def forward_current(self, z: Tensor) -> Tensor:
        """The image at the current resolution, unclipped (what D is trained on)."""
        x = self.blocks[block_name(4)](self.latent_norm(z))
        names = list(self.blocks)
        if len(names) == 1:
            return self.to_rgb[names[0]](x)
        for name in names[1:-1]:
            x = self.blocks[name](x)
        newest = self.to_rgb[names[-1]](self.blocks[names[-1]](x))
        if not self.fading:
            return newest
        previous = upscale2d(self.to_rgb[names[-2]](x))
        return fade_in(self.alpha.to(newest.dtype), previous, newest)

    def forward(self, z: Tensor, y: Optional[Tensor] = None, *, current_resolution: bool = False) -> Tensor:
        x = self.forward_current(z)
        if current_resolution:
            return x
        return upscale2d(x, self.target_resolution // self.current_resolution).clamp(-1.0, 1.0)
