"""The synthesis network g of StyleGAN v1: a learned 4×4 constant, then two styled layers per resolution.

Karras, Laine & Aila 2019, §2 and Figure 1(b); the details follow NVlabs/stylegan
``training/networks_stylegan.py`` (``G_synthesis``):

* every layer ends with the *epilogue*: per-pixel noise with a learned per-channel
  strength, bias, leaky ReLU (0.2), instance normalisation and the style modulation of
  AdaIN. The noise is added before each AdaIN, as in v1;
* 4×4: the constant (ones, or N(0, 1) with ``const_init="randn"``), its epilogue, a 3×3
  convolution and its epilogue. With v1's ones the first instance norm sees a spatially
  constant map: it outputs 0 and layer 0's scale style gets no gradient until the
  constant and the layer-0 noise acquire spatial variation, which the norm (eps 1e-8)
  then amplifies to unit variance. StyleGAN2 (stylegan2-ada-pytorch ``training/networks.py``, ``SynthesisBlock``:
  ``torch.randn([out_channels, resolution, resolution])``) and rosinality/style-based-gan-pytorch
  (``ConstantInput``: ``torch.randn``) start the constant from N(0, 1) instead;
* 2^r × 2^r for r ≥ 3: nearest ×2 upsampling, a 3×3 convolution, the [1, 2, 1] blur, the
  epilogue; a 3×3 convolution and the epilogue. v1 blurs *after* the upsampling
  convolution, which differs from blurring before it at the border (zero padding), so the
  three steps are composed here rather than taken from ``BlurUpsample``;
* a 1×1 to-RGB convolution (gain 1, bias) at the output resolution, with no output
  activation; outside training the image is clamped to [-1, 1], the range gancli's
  generators promise (NVlabs clamp when they convert to 8 bits). D sees the unclamped
  image in training, as in v1.

Layer i of the ``num_ws = 2·log2(R) − 2`` layers is styled by w[:, i]; layers 2k and
2k + 1 work at resolution 4·2^k (``layer_resolutions``).

Growing (``grow=True``, v1's "linear" structure): the network starts at
``start_resolution`` with a to-RGB layer per resolution; :meth:`grow_to` adds blocks, and
while the newest one fades in, the image is ``fade_in(α, upsampled to-RGB of the previous
resolution, to-RGB of the newest)``. α is the buffer ``fade_alpha``, so an EMA copy (whose
buffers are copied from G) and a checkpoint carry it. The output is upsampled (nearest) to
the target resolution at every phase. Not implemented: v1's "fused" transposed convolution
at ≥ 128 px, which computes the same upsampling convolution faster.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gancli.nn import AdaIN, Blur, ConstantInput, EqualizedConv2d, NoiseInjection, fade_in, upscale2d

from gancli_plugin_stylegan.widths import Widths

NEGATIVE_SLOPE = 0.2


class StyleEpilogue(nn.Module):
    """v1 ``layer_epilogue``: noise → bias → leaky ReLU(0.2) → AdaIN (instance norm, then style)."""

    def __init__(self, channels: int, resolution: int, w_dim: int):
        super().__init__()
        self.noise = NoiseInjection(channels, resolution)
        self.bias = nn.Parameter(torch.zeros(channels))
        self.adain = AdaIN(channels, w_dim)

    def forward(self, x: Tensor, w: Tensor, noise_mode: str) -> Tensor:
        x = self.noise(x, noise_mode)
        x = F.leaky_relu(x + self.bias.to(x.dtype)[None, :, None, None], NEGATIVE_SLOPE)
        return self.adain(x, w)


class InitialBlock(nn.Module):
    """4×4: the learned constant and its epilogue (layer 0), a 3×3 convolution and its epilogue (layer 1)."""

    resolution = 4

    def __init__(self, channels: int, w_dim: int, const_init: str = "ones"):
        super().__init__()
        self.out_channels = channels
        self.const = ConstantInput(channels, size=4, init=const_init)
        self.epilogue0 = StyleEpilogue(channels, 4, w_dim)
        self.conv = EqualizedConv2d(channels, channels, 3, bias=False)
        self.epilogue1 = StyleEpilogue(channels, 4, w_dim)

    def forward(self, x: Optional[Tensor], ws: Tensor, noise_mode: str) -> Tensor:
        x = self.const(ws.shape[0]).to(ws.dtype)
        x = self.epilogue0(x, ws[:, 0], noise_mode)
        return self.epilogue1(self.conv(x), ws[:, 1], noise_mode)


class UpBlock(nn.Module):
    """2^r × 2^r, r ≥ 3: upsample → 3×3 conv → blur → epilogue; 3×3 conv → epilogue (v1 ``Conv0_up``, ``Conv1``)."""

    def __init__(self, in_channels: int, out_channels: int, resolution: int, w_dim: int, blur: bool):
        super().__init__()
        self.resolution = resolution
        self.out_channels = out_channels
        self.conv0 = EqualizedConv2d(in_channels, out_channels, 3, bias=False)
        self.blur = Blur() if blur else nn.Identity()
        self.epilogue0 = StyleEpilogue(out_channels, resolution, w_dim)
        self.conv1 = EqualizedConv2d(out_channels, out_channels, 3, bias=False)
        self.epilogue1 = StyleEpilogue(out_channels, resolution, w_dim)

    def forward(self, x: Tensor, ws: Tensor, noise_mode: str) -> Tensor:
        x = self.blur(self.conv0(upscale2d(x)))
        x = self.epilogue0(x, ws[:, 0], noise_mode)
        return self.epilogue1(self.conv1(x), ws[:, 1], noise_mode)


class SynthesisNetwork(nn.Module):
    """w (N, num_ws, w_dim) → images (N, channels, R, R); see the module docstring."""

    fade_alpha: Tensor

    def __init__(
        self,
        resolution: int,
        channels: int,
        w_dim: int,
        widths: Widths = Widths(),
        *,
        blur: bool = True,
        grow: bool = False,
        start_resolution: int = 4,
        const_init: str = "ones",
    ):
        super().__init__()
        if resolution < 4 or resolution & (resolution - 1):
            raise ValueError(f"SynthesisNetwork needs a power-of-two resolution ≥ 4, got {resolution}")
        self.resolution = resolution
        self.channels = channels
        self.w_dim = w_dim
        self.widths = widths
        self.use_blur = blur
        self.growing = grow
        self.num_ws = 2 * int(math.log2(resolution)) - 2
        self.layer_resolutions = [4 * 2 ** (i // 2) for i in range(self.num_ws)]
        self.blocks = nn.ModuleList([InitialBlock(widths.at(4), w_dim, const_init)])
        self.to_rgb = nn.ModuleDict()
        self.register_buffer("fade_alpha", torch.ones(()))
        if grow:
            self._add_to_rgb(4)
            self.grow_to(start_resolution)
        else:
            self.grow_to(resolution)
            self._add_to_rgb(resolution)  # v1's "fixed" structure: one to-RGB layer, at the output

    @property
    def current_resolution(self) -> int:
        return self.blocks[-1].resolution

    @property
    def active_ws(self) -> int:
        """The w layers the network uses at its current resolution."""
        return 2 * len(self.blocks)

    def _add_to_rgb(self, resolution: int) -> None:
        self.to_rgb[str(resolution)] = EqualizedConv2d(self.widths.at(resolution), self.channels, 1, gain=1.0)

    def grow_to(self, resolution: int) -> bool:
        """Add the blocks (and, when growing, their to-RGB layers) up to ``resolution``; True if any were added."""
        if resolution > self.resolution or resolution < 4 or resolution & (resolution - 1):
            raise ValueError(f"cannot grow a {self.resolution}² synthesis network to {resolution}²")
        added = False
        while self.current_resolution < resolution:
            res = self.current_resolution * 2
            self.blocks.append(UpBlock(self.widths.at(res // 2), self.widths.at(res), res, self.w_dim, self.use_blur))
            if self.growing:
                self._add_to_rgb(res)
            added = True
        return added

    def set_fade(self, alpha: float) -> None:
        self.fade_alpha.fill_(float(alpha))

    def forward(self, w: Tensor, *, noise_mode: str = "random") -> Tensor:
        if w.dim() != 3 or w.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"synthesis expects w of shape (N, {self.num_ws}, {self.w_dim}), got {tuple(w.shape)}")
        x: Optional[Tensor] = None
        previous: Optional[Tensor] = None
        for index, block in enumerate(self.blocks):
            previous, x = x, block(x, w[:, 2 * index : 2 * index + 2], noise_mode)
        current = self.current_resolution
        image = self.to_rgb[str(current)](x)
        if self.growing and previous is not None and float(self.fade_alpha) < 1.0:
            older = upscale2d(self.to_rgb[str(current // 2)](previous))
            image = fade_in(self.fade_alpha.to(image.dtype), older, image)
        if current < self.resolution:
            image = upscale2d(image, self.resolution // current)
        return image if self.training else image.clamp(-1.0, 1.0)

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, channels={self.channels}, num_ws={self.num_ws}, growing={self.growing}"
