"""The bottleneck residual blocks of BigGAN-deep (paper appendix B, figure 16; BigGAN-PyTorch ``BigGANdeep.py``).

Both blocks squeeze the width by ``channel_ratio`` (4) with a 1×1 conv, run two 3×3 convs and
widen back with a 1×1 conv. Where the width changes, the skip connection has no 1×1 conv:

* G (:class:`DeepGeneratorBlock`) keeps the first ``out_ch`` channels of its input and DROPS
  the rest (``x = x[:, :out_channels]``); BigGAN-deep's G only ever narrows.
* D (:class:`DeepDiscriminatorBlock`) KEEPS all input channels and concatenates ``out_ch −
  in_ch`` new ones from a 1×1 conv (``torch.cat([x, self.conv_sc(x)], 1)``); its D only widens.

Every conv is spectrally normalized with a bias, as BigGAN-PyTorch's ``SNConv2d``.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from gancli.nn import ConditionalBatchNorm2d, SNConv2d

CHANNEL_RATIO = 4  # BigGAN-PyTorch GBlock/DBlock(channel_ratio=4)


def _conv(in_ch: int, out_ch: int, kernel_size: int) -> nn.Conv2d:
    return SNConv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2)


class DeepGeneratorBlock(nn.Module):
    """norm-ReLU-conv1×1 → norm-ReLU → ×2 → conv3 → norm-ReLU-conv3 → norm-ReLU-conv1×1, plus x[:, :out_ch] (×2).

    Each of the four norms is a :class:`~gancli.nn.ConditionalBatchNorm2d` reading the same
    condition vector (the shared class embedding concatenated with all of z); with
    ``cond_dim=0`` (unconditional and no z input) they are plain BatchNorm layers.
    """

    def __init__(self, in_ch: int, out_ch: int, *, cond_dim: int, upsample: bool, init: str,
                 channel_ratio: int = CHANNEL_RATIO) -> None:
        super().__init__()
        if out_ch > in_ch:
            raise ValueError(f"a BigGAN-deep G block drops channels and cannot widen {in_ch} → {out_ch}")
        hidden = in_ch // channel_ratio
        if hidden < 1:
            raise ValueError(f"{in_ch} channels are too few for the 1/{channel_ratio} bottleneck")
        self.in_ch, self.out_ch, self.upsample = in_ch, out_ch, upsample
        self.cond_dim = cond_dim

        def norm(channels: int) -> nn.Module:
            if cond_dim:
                return ConditionalBatchNorm2d(channels, cond_dim=cond_dim, spectral_norm=True, init=init)
            return nn.BatchNorm2d(channels)

        self.norm1, self.norm2, self.norm3, self.norm4 = norm(in_ch), norm(hidden), norm(hidden), norm(hidden)
        self.conv1 = _conv(in_ch, hidden, 1)
        self.conv2 = _conv(hidden, hidden, 3)
        self.conv3 = _conv(hidden, hidden, 3)
        self.conv4 = _conv(hidden, out_ch, 1)

    def _norm(self, layer: nn.Module, h: Tensor, cond: Optional[Tensor]) -> Tensor:
        return layer(h, cond) if self.cond_dim else layer(h)

    def forward(self, x: Tensor, cond: Optional[Tensor] = None) -> Tensor:
        h = self.conv1(F.relu(self._norm(self.norm1, x, cond)))
        h = F.relu(self._norm(self.norm2, h, cond))
        x = x[:, : self.out_ch]
        if self.upsample:
            h = F.interpolate(h, scale_factor=2, mode="nearest")
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        h = self.conv2(h)
        h = self.conv3(F.relu(self._norm(self.norm3, h, cond)))
        h = self.conv4(F.relu(self._norm(self.norm4, h, cond)))
        return h + x

    def extra_repr(self) -> str:
        return f"{self.in_ch}, {self.out_ch}, upsample={self.upsample}"


class DeepDiscriminatorBlock(nn.Module):
    """ReLU-conv1×1 → ReLU-conv3 → ReLU-conv3 → ReLU → avgpool 2 → conv1×1, plus [pool(x), conv1×1(pool(x))]."""

    def __init__(self, in_ch: int, out_ch: int, *, downsample: bool, channel_ratio: int = CHANNEL_RATIO) -> None:
        super().__init__()
        if out_ch < in_ch:
            raise ValueError(f"a BigGAN-deep D block keeps its input channels and cannot narrow {in_ch} → {out_ch}")
        hidden = out_ch // channel_ratio
        if hidden < 1:
            raise ValueError(f"{out_ch} channels are too few for the 1/{channel_ratio} bottleneck")
        self.in_ch, self.out_ch, self.downsample = in_ch, out_ch, downsample
        self.conv1 = _conv(in_ch, hidden, 1)
        self.conv2 = _conv(hidden, hidden, 3)
        self.conv3 = _conv(hidden, hidden, 3)
        self.conv4 = _conv(hidden, out_ch, 1)
        # only the channels the block adds come from a conv; the input's are kept as they are
        self.extra_channels = _conv(in_ch, out_ch - in_ch, 1) if out_ch > in_ch else None

    def _pool(self, h: Tensor) -> Tensor:
        return F.avg_pool2d(h, 2) if self.downsample else h

    def shortcut(self, x: Tensor) -> Tensor:
        x = self._pool(x)
        if self.extra_channels is None:
            return x
        return torch.cat([x, self.extra_channels(x)], dim=1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.relu(x))
        h = self.conv2(F.relu(h))
        h = self.conv3(F.relu(h))
        h = self.conv4(self._pool(F.relu(h)))
        return h + self.shortcut(x)

    def extra_repr(self) -> str:
        return f"{self.in_ch}, {self.out_ch}, downsample={self.downsample}"
