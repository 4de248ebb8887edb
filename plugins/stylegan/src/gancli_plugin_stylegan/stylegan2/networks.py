"""StyleGAN2's generator (skip architecture) and discriminator (residual), config E/F of Karras et al. 2020.

NVlabs/stylegan2-ada-pytorch ``training/networks.py`` (``SynthesisBlock``/``SynthesisNetwork``
with ``architecture='skip'``, ``DiscriminatorBlock``/``Discriminator`` with
``architecture='resnet'``, ``DiscriminatorEpilogue``); no progressive growing.

Generator. A learned 4×4 constant (N(0, 1) at first), then per resolution 2^r (r ≥ 3) a
modulated 3×3 conv that upsamples ×2 and a modulated 3×3 conv; 4² has one conv. Every block
has a to-RGB layer, and the image is the sum of the to-RGB outputs, each upsampled with the
[1, 3, 3, 1] filter into the next (Figure 7 of the paper, "skip"). With ``num_ws = 2·log2(R) − 2``
w's the conv layers take w[0], w[1], … in order and each block's to-RGB shares the w of
the next block's first conv (NVlabs' ``ws.narrow(1, w_idx, num_conv + num_torgb)``), the
last to-RGB taking the last w. ``layer_resolutions`` gives layers 2k and 2k + 1 the
resolution 4·2^k, as the stylegan family (layer 2k + 1 also drives the next block's
upsampling conv). Outside training the image is clamped to [-1, 1].

The W-space protocol is the stylegan family's (gancli_plugin_stylegan.generator): the same
core ``MappingNetwork`` (8 layers, lr multiplier 0.01, w_avg β 0.995), ``mapping(z, psi=,
cutoff=)``, ``synthesis(w, noise_mode=)`` with "random" | "const" | "none", ``w_avg``,
``num_ws``, ``w_dim``, ``layer_resolutions``; each conv layer stores its ``noise_const`` map.

Discriminator. From-RGB (1×1 conv, lReLU) at the input resolution, then per resolution a
residual block: 3×3 conv, 3×3 conv with [1, 3, 3, 1] downsampling, added to a 1×1
downsampling skip conv (no bias), both branches times √0.5; at 4²: minibatch stddev (group 4,
one feature), 3×3 conv, dense to the same width (the features), dense to one logit.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from gancli.nn import Blur, ConstantInput, MappingNetwork, MinibatchStdDev

from gancli_plugin_stylegan.stylegan2.layers import RESAMPLE_TAPS, Conv, Dense, ModulatedConv, ToRGB
from gancli_plugin_stylegan.widths import Widths
from gancli_plugin_stylegan.wspace import WSpaceGenerator

SQRT_HALF = math.sqrt(0.5)


class SynthesisBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, channels: int, taps):
        super().__init__()
        self.resolution = resolution
        self.first = in_channels == 0
        if self.first:
            self.const = ConstantInput(out_channels, size=resolution, init="randn")
        else:
            self.conv0 = ModulatedConv(in_channels, out_channels, w_dim, resolution, up=2, taps=taps)
            self.upsample = Blur(taps, up=2)
        self.conv1 = ModulatedConv(out_channels, out_channels, w_dim, resolution, taps=taps)
        self.to_rgb = ToRGB(out_channels, channels, w_dim)
        self.num_conv = 1 if self.first else 2

    def forward(self, x: Optional[Tensor], image: Optional[Tensor], ws: Tensor, noise_mode: str, fused: bool):
        if self.first:
            x = self.const(ws.shape[0]).to(ws.dtype)
            x = self.conv1(x, ws[:, 0], noise_mode, fused)
        else:
            x = self.conv0(x, ws[:, 0], noise_mode, fused)
            x = self.conv1(x, ws[:, 1], noise_mode, fused)
        rgb = self.to_rgb(x, ws[:, self.num_conv], fused)
        image = rgb if image is None else self.upsample(image).to(rgb.dtype) + rgb
        return x, image


class StyleGAN2Synthesis(nn.Module):
    """w (N, num_ws, w_dim) → images (N, channels, R, R): the skip generator of config E/F."""

    def __init__(self, resolution: int, channels: int, w_dim: int, widths: Widths = Widths(16384, 1.0, 512), *,
                 taps=RESAMPLE_TAPS, fused_modconv: bool = False):
        super().__init__()
        if resolution < 4 or resolution & (resolution - 1):
            raise ValueError(f"the StyleGAN2 synthesis network needs a power-of-two resolution ≥ 4, got {resolution}")
        self.resolution, self.channels, self.w_dim, self.fused_modconv = resolution, channels, w_dim, fused_modconv
        self.num_ws = 2 * int(math.log2(resolution)) - 2
        self.layer_resolutions = [4 * 2 ** (i // 2) for i in range(self.num_ws)]
        self.blocks = nn.ModuleList()
        res = 4
        while res <= resolution:
            in_channels = widths.at(res // 2) if res > 4 else 0
            self.blocks.append(SynthesisBlock(in_channels, widths.at(res), w_dim, res, channels, taps))
            res *= 2

    # the stylegan family's objective mixes styles over the layers in use: all of them (no growing)
    @property
    def active_ws(self) -> int:
        return self.num_ws

    @property
    def current_resolution(self) -> int:
        return self.resolution

    def forward(self, w: Tensor, *, noise_mode: str = "random") -> Tensor:
        if w.dim() != 3 or w.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"synthesis expects w of shape (N, {self.num_ws}, {self.w_dim}), got {tuple(w.shape)}")
        if noise_mode not in ("random", "const", "none"):
            raise ValueError(f"noise_mode must be one of random, const, none, got {noise_mode!r}")
        x = image = None
        index = 0
        # the grouped form folds the batch into the channels, which a traced graph (ONNX, TorchScript) would fix
        # at the traced batch size: graphs are traced from the unfused form, the same function
        fused = self.fused_modconv and not torch.jit.is_tracing()
        for block in self.blocks:
            x, image = block(x, image, w[:, index: index + block.num_conv + 1], noise_mode, fused)
            index += block.num_conv
        return image if self.training else image.clamp(-1.0, 1.0)

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, channels={self.channels}, num_ws={self.num_ws}"


class StyleGAN2Generator(WSpaceGenerator):
    """Mapping network (the stylegan family's) and the skip synthesis network; gancli's W-space protocol."""

    def __init__(self, *, resolution: int, channels: int, z_dim: int = 512, w_dim: int = 512, mapping_layers: int = 8,
                 mapping_width: Optional[int] = None, mapping_lr_multiplier: float = 0.01, w_avg_beta: float = 0.995,
                 widths: Widths = Widths(16384, 1.0, 512), taps=RESAMPLE_TAPS, fused_modconv: bool = False):
        super().__init__()
        self.z_dim, self.w_dim, self.num_classes = z_dim, w_dim, 0
        self.synthesis = StyleGAN2Synthesis(resolution, channels, w_dim, widths, taps=taps, fused_modconv=fused_modconv)
        self.mapping = MappingNetwork(
            z_dim, w_dim, mapping_layers, lr_multiplier=mapping_lr_multiplier, w_avg_beta=w_avg_beta,
            hidden_dim=mapping_width, num_ws=self.synthesis.num_ws,
        )


class ResidualBlock(nn.Module):
    """NVlabs ``DiscriminatorBlock`` (resnet): (conv 3×3, conv 3×3 ↓2)·√0.5 + (1×1 ↓2 skip, no bias)·√0.5."""

    def __init__(self, channels: int, out_channels: int, taps):
        super().__init__()
        self.conv0 = Conv(channels, channels, 3, taps=taps)
        self.conv1 = Conv(channels, out_channels, 3, down=2, taps=taps)
        self.skip = Conv(channels, out_channels, 1, bias=False, activation="linear", down=2, taps=taps)

    def forward(self, x: Tensor) -> Tensor:
        return self.skip(x, gain=SQRT_HALF) + self.conv1(self.conv0(x), gain=SQRT_HALF)


class StyleGAN2Discriminator(nn.Module):
    def __init__(self, resolution: int, channels: int, widths: Widths = Widths(16384, 1.0, 512), *,
                 mbstd_group_size: int = 4, mbstd_num_features: int = 1, taps=RESAMPLE_TAPS):
        super().__init__()
        if resolution < 8 or resolution & (resolution - 1):
            raise ValueError(f"the StyleGAN2 discriminator needs a power-of-two resolution ≥ 8, got {resolution}")
        self.resolution, self.channels = resolution, channels
        self.from_rgb = Conv(channels, widths.at(resolution), 1)
        blocks = []
        res = resolution
        while res > 4:
            blocks.append(ResidualBlock(widths.at(res), widths.at(res // 2), taps))
            res //= 2
        self.blocks = nn.Sequential(*blocks)
        width = widths.at(4)
        self.mbstd = MinibatchStdDev(mbstd_group_size, mbstd_num_features) if mbstd_group_size > 1 else None
        self.conv = Conv(width + (mbstd_num_features if self.mbstd is not None else 0), width, 3)
        self.dense = Dense(width * 16, width)
        self.score = Dense(width, 1, activation="linear")

    def forward(self, x: Tensor, y: Optional[Tensor] = None, return_features: bool = False):
        if x.dim() != 4 or x.shape[1:] != (self.channels, self.resolution, self.resolution):
            raise ValueError(
                f"the discriminator expects (N, {self.channels}, {self.resolution}, {self.resolution}), got {tuple(x.shape)}"
            )
        h = self.blocks(self.from_rgb(x))
        if self.mbstd is not None:
            h = self.mbstd(h)
        features = self.dense(self.conv(h).flatten(1))
        score = self.score(features).squeeze(1)
        return (score, features) if return_features else score

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, channels={self.channels}"
