"""The Progressive GAN discriminator (Karras et al. 2018, Table 2 and Figure 2), grown one block at a time.

As ``D_paper`` in tkarras/progressive_growing_of_gans networks.py: a 1×1 "from-RGB" convolution
with LeakyReLU 0.2 at the input resolution, then per resolution two 3×3 convolutions (the second
to the next-lower resolution's width) and a 2×2 average-pool downsampling, and at 4×4 the minibatch
standard deviation channel, a 3×3 convolution, a dense layer and a linear dense output. Equalized
learning rate everywhere, no normalisation.

The second convolution and the pooling are one fused layer, followed by its bias and LReLU, as
the reference's default ``fused_scale=True`` (``conv2d_downscale2d``); the paper's Table 2 lists
the LReLU before the downsampling, which is the reference's ``fused_scale=False`` path. The fused
form is 2–3× faster on a CPU.

While a block fades in, its output is ``fade_in(α, from-RGB of the 2×2-averaged image at the
previous resolution, the new block's output)`` (the reference's ``lerp(x, fromrgb(downscale2d(img)),
lod_in − lod)``). Images larger than the current resolution are average-pooled to it first, as the
reference's D pools its full-resolution input.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gancli.nn import EqualizedConv2d, EqualizedLinear, MinibatchStdDev, downscale2d, fade_in

from gancli_plugin_progan.generator import LEAKY_SLOPE
from gancli_plugin_progan.resample import ConvDownsample2d
from gancli_plugin_progan.widths import GrowingBlocks, block_name


class FromRGB(nn.Module):
    def __init__(self, image_channels: int, channels: int):
        super().__init__()
        self.conv = EqualizedConv2d(image_channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(self.conv(x), LEAKY_SLOPE)


class DiscriminatorBlock(nn.Module):
    """Conv 3×3, LReLU, conv 3×3 to the lower resolution's width fused with 2×2 average pooling, LReLU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = EqualizedConv2d(in_channels, in_channels, 3)
        self.conv1 = ConvDownsample2d(in_channels, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        x = F.leaky_relu(self.conv0(x), LEAKY_SLOPE)
        return F.leaky_relu(self.conv1(x), LEAKY_SLOPE)


class FinalDiscriminatorBlock(nn.Module):
    """At 4×4: minibatch stddev, conv 3×3, dense to nf(0) (the features), dense to one linear score."""

    def __init__(self, channels: int, hidden: int, mbstd_group_size: int):
        super().__init__()
        self.mbstd = MinibatchStdDev(mbstd_group_size) if mbstd_group_size > 1 else None
        extra = 1 if self.mbstd is not None else 0
        self.conv = EqualizedConv2d(channels + extra, channels, 3)
        self.dense0 = EqualizedLinear(channels * 16, hidden)
        self.dense1 = EqualizedLinear(hidden, 1, gain=1.0)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = F.leaky_relu(self.conv(x), LEAKY_SLOPE)
        features = F.leaky_relu(self.dense0(x.flatten(1)), LEAKY_SLOPE)
        return self.dense1(features).squeeze(1), features


class ProGANDiscriminator(GrowingBlocks, nn.Module):
    """D for images of ``target_resolution``; it starts at 4×4 and gains one input block per :meth:`grow`."""

    def __init__(self, channels: int, target_resolution: int, fmap_base: int, fmap_max: int,
                 mbstd_group_size: int):
        super().__init__()
        self.image_channels = channels
        self.target_resolution = target_resolution
        self.fmap_base, self.fmap_max = fmap_base, fmap_max
        self.from_rgb = nn.ModuleDict()
        self.blocks = nn.ModuleDict()
        self.register_buffer("alpha", torch.ones(()))
        self.blocks[block_name(4)] = FinalDiscriminatorBlock(self._width(4), self._width(2), mbstd_group_size)
        self.from_rgb[block_name(4)] = FromRGB(channels, self._width(4))

    def grow(self) -> None:
        """Add the input block for twice the current resolution; the layers already trained are kept."""
        resolution = 2 * self.current_resolution
        if resolution > self.target_resolution:
            raise ValueError(f"the discriminator is already at its target resolution {self.target_resolution}")
        self.blocks[block_name(resolution)] = DiscriminatorBlock(self._width(resolution), self._width(resolution // 2))
        self.from_rgb[block_name(resolution)] = FromRGB(self.image_channels, self._width(resolution))

    def forward(self, x: Tensor, y: Optional[Tensor] = None, return_features: bool = False):
        resolution = self.current_resolution
        if x.shape[-1] < resolution or x.shape[-1] % resolution:
            raise ValueError(f"the discriminator is at {resolution}×{resolution}; got images of {x.shape[-1]}")
        x = downscale2d(x, x.shape[-1] // resolution)
        names = list(self.blocks)[::-1]  # the input block first, the 4×4 block last
        h = self.from_rgb[names[0]](x)
        if len(names) > 1:
            h = self.blocks[names[0]](h)
            if self.fading:
                previous = self.from_rgb[names[1]](downscale2d(x))
                h = fade_in(self.alpha.to(h.dtype), previous, h)
            for name in names[1:-1]:
                h = self.blocks[name](h)
        score, features = self.blocks[names[-1]](h)
        return (score, features) if return_features else score
