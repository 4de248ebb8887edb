"""Equalized-LR 3×3 convolutions fused with a ×2 resampling, as networks.py ``upscale2d_conv2d`` and
``conv2d_downscale2d`` (tkarras/progressive_growing_of_gans, ``fused_scale=True``, its default).

The stored weight is the 3×3 kernel of :class:`gancli.nn.EqualizedConv2d` (N(0, 1), He constant
for fan_in = in·3·3 applied at run time); the forward pass sums its four one-pixel shifts into a 4×4
kernel and runs one strided (transposed) convolution. That computes exactly

* :class:`UpsampleConv2d`: nearest-neighbour upsampling ×2, then the 3×3 convolution;
* :class:`ConvDownsample2d`: the 3×3 convolution, then 2×2 average pooling (the kernel × ¼),

with zero padding at the borders, in 2–3× less time on a CPU (no full-resolution 3×3 pass).
The bias is added after the resampling.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from gancli.nn import EqualizedConv2d


def _summed_4x4(weight: Tensor) -> Tensor:
    """The 4×4 kernel whose stride-2 use equals the 3×3 kernel at twice the resolution."""
    w = F.pad(weight, (1, 1, 1, 1))
    return w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]


class UpsampleConv2d(EqualizedConv2d):
    """Nearest-neighbour ×2 upsampling followed by an equalized-LR 3×3 convolution, fused."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs):
        super().__init__(in_channels, out_channels, 3, **kwargs)

    def forward(self, x: Tensor) -> Tensor:
        kernel = _summed_4x4(self.effective_weight).transpose(0, 1).flip(-1, -2)
        return F.conv_transpose2d(x, kernel, self.effective_bias, stride=2, padding=1)


class ConvDownsample2d(EqualizedConv2d):
    """An equalized-LR 3×3 convolution followed by 2×2 average pooling, fused."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs):
        super().__init__(in_channels, out_channels, 3, **kwargs)

    def forward(self, x: Tensor) -> Tensor:
        kernel = _summed_4x4(self.effective_weight) * 0.25
        return F.conv2d(x, kernel, self.effective_bias, stride=2, padding=1)
