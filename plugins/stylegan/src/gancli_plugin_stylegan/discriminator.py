"""StyleGAN v1's discriminator: ProGAN's D with equalized LR, blurred downsampling and minibatch stddev.

NVlabs/stylegan ``training/networks_stylegan.py`` (``D_basic``), Karras et al. 2019 appendix C:

* from-RGB: a 1×1 convolution to ``nf(r − 1)`` maps and leaky ReLU (0.2) at the input resolution 2^r;
* 2^r × 2^r for r ≥ 3: 3×3 conv (``nf(r − 1)``) + lReLU; [1, 2, 1] blur, 3×3 conv (``nf(r − 2)``),
  2×2 average pooling + lReLU. v1 blurs before the downsampling convolution, so the three
  steps are composed here (``BlurDownsample`` would pool before the convolution);
* 4×4: minibatch standard deviation (group 4, one feature), 3×3 conv (``nf(1)``) + lReLU, dense
  to ``nf(0)`` + lReLU, dense to one score (gain 1). The score is a logit.

Growing (``grow=True``, v1's "linear" structure): a from-RGB layer per resolution. The input
is always the target resolution; at a lower phase it is average-pooled to the current one
(v1 downscales ``images_in`` by 2^lod), and while the newest block fades in, its output is
``fade_in(α, from-RGB of the 2×-pooled image, block output)``. α is the buffer ``fade_alpha``.
Not implemented: v1's fused stride-2 convolution at ≥ 128 px (the same map, computed faster).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gancli.nn import Blur, EqualizedConv2d, EqualizedLinear, MinibatchStdDev, downscale2d, fade_in

from gancli_plugin_stylegan.widths import Widths

NEGATIVE_SLOPE = 0.2


def _lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, NEGATIVE_SLOPE)


class FromRGB(nn.Module):
    def __init__(self, channels: int, out_channels: int):
        super().__init__()
        self.conv = EqualizedConv2d(channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return _lrelu(self.conv(x))


class DownBlock(nn.Module):
    """v1 ``Conv0`` and ``Conv1_down`` at resolution 2^r (r ≥ 3): (N, nf(r−1), R, R) → (N, nf(r−2), R/2, R/2)."""

    def __init__(self, in_channels: int, out_channels: int, resolution: int, blur: bool):
        super().__init__()
        self.resolution = resolution
        self.conv0 = EqualizedConv2d(in_channels, in_channels, 3)
        self.blur = Blur() if blur else nn.Identity()
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        x = _lrelu(self.conv0(x))
        # the bias commutes with the average pooling, so conv (with bias) → pool equals v1's conv → pool → bias
        return _lrelu(downscale2d(self.conv1(self.blur(x))))


class OutputBlock(nn.Module):
    """v1's 4×4 block: minibatch stddev, 3×3 conv, dense + lReLU (the features), dense to the score."""

    def __init__(self, channels: int, hidden: int, mbstd_group_size: int, mbstd_num_features: int):
        super().__init__()
        self.mbstd = MinibatchStdDev(mbstd_group_size, mbstd_num_features) if mbstd_group_size > 1 else None
        extra = mbstd_num_features if self.mbstd is not None else 0
        self.conv = EqualizedConv2d(channels + extra, channels, 3)
        self.dense = EqualizedLinear(channels * 16, hidden)
        self.score = EqualizedLinear(hidden, 1, gain=1.0)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = _lrelu(self.conv(x))
        features = _lrelu(self.dense(x.flatten(1)))
        return self.score(features).squeeze(1), features


class StyleGANDiscriminator(nn.Module):
    fade_alpha: Tensor

    def __init__(
        self,
        resolution: int,
        channels: int,
        widths: Widths = Widths(),
        *,
        blur: bool = True,
        mbstd_group_size: int = 4,
        mbstd_num_features: int = 1,
        grow: bool = False,
        start_resolution: int = 4,
    ):
        super().__init__()
        if resolution < 4 or resolution & (resolution - 1):
            raise ValueError(f"the discriminator needs a power-of-two resolution ≥ 4, got {resolution}")
        self.resolution = resolution
        self.channels = channels
        self.widths = widths
        self.use_blur = blur
        self.growing = grow
        self.mbstd_group_size = mbstd_group_size
        self.output = OutputBlock(widths.at(4), widths.at(2), mbstd_group_size, mbstd_num_features)
        self.blocks = nn.ModuleDict()
        self.from_rgb = nn.ModuleDict()
        self._current = 4
        self.register_buffer("fade_alpha", torch.ones(()))
        if grow:
            self.from_rgb["4"] = FromRGB(channels, widths.at(4))
            self.grow_to(start_resolution)
        else:
            self.grow_to(resolution)
            self.from_rgb[str(resolution)] = FromRGB(channels, widths.at(resolution))

    @property
    def current_resolution(self) -> int:
        return self._current

    def grow_to(self, resolution: int) -> bool:
        """Add the blocks (and, when growing, their from-RGB layers) up to ``resolution``; True if any were added."""
        if resolution > self.resolution or resolution < 4 or resolution & (resolution - 1):
            raise ValueError(f"cannot grow a {self.resolution}² discriminator to {resolution}²")
        added = False
        while self._current < resolution:
            res = self._current * 2
            self.blocks[str(res)] = DownBlock(self.widths.at(res), self.widths.at(res // 2), res, self.use_blur)
            if self.growing:
                self.from_rgb[str(res)] = FromRGB(self.channels, self.widths.at(res))
            self._current = res
            added = True
        return added

    def set_fade(self, alpha: float) -> None:
        self.fade_alpha.fill_(float(alpha))

    def forward(self, x: Tensor, y: Tensor | None = None, return_features: bool = False):
        if x.dim() != 4 or x.shape[1:] != (self.channels, self.resolution, self.resolution):
            raise ValueError(
                f"the discriminator expects (N, {self.channels}, {self.resolution}, {self.resolution}), got {tuple(x.shape)}"
            )
        current = self._current
        image = downscale2d(x, self.resolution // current) if current < self.resolution else x
        h = self.from_rgb[str(current)](image)
        if current > 4:
            h = self.blocks[str(current)](h)
            if self.growing and float(self.fade_alpha) < 1.0:
                older = self.from_rgb[str(current // 2)](downscale2d(image))
                h = fade_in(self.fade_alpha.to(h.dtype), older, h)
        for res in (2 ** k for k in range(int(math.log2(current)) - 1, 2, -1)):
            h = self.blocks[str(res)](h)
        score, features = self.output(h)
        return (score, features) if return_features else score

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, channels={self.channels}, growing={self.growing}"
