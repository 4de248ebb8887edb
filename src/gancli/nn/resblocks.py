"""Residual up and down blocks of the SNGAN ResNets (Miyato et al. 2018, appendix B).

Layer for layer they follow pfnet-research/sngan_projection (``gen_models/resblocks.py``
``Block`` and ``dis_models/resblocks.py`` ``Block``/``OptimizedBlock``), which are also
the blocks of the WGAN-GP ResNets (Gulrajani et al. 2017) and of SAGAN and BigGAN
(ajbrock/BigGAN-PyTorch ``layers.GBlock``/``layers.DBlock``). Every ReLU is out of
place: the block input is reused by the shortcut.

Initialisation (``init``, see :mod:`gancli.nn.initialization`): with
``"xavier_uniform"`` the 3×3 residual convs get gain √2 and the 1×1 shortcut gain 1, as
in the SNGAN reference; ``"orthogonal"`` (BigGAN) and ``"normal"`` use gain 1 throughout.
``residual_gain`` sets the residual convs' gain instead (SAGAN's released code: 1).
"""
from __future__ import annotations

import math
from typing import Optional

from torch import Tensor, nn
from torch.nn import functional as F

from gancli.nn.conditional import ConditionalBatchNorm2d
from gancli.nn.initialization import check_init_scheme, init_weights
from gancli.nn.spectral import spectral_norm as _spectral_norm

GENERATOR_NORMS = ("batch", "class", "vector")
DISCRIMINATOR_NORMS = ("none", "layer")


def _conv(
    in_ch: int, out_ch: int, kernel_size: int, *, init: str, residual: bool, spectral_norm: bool,
    residual_gain: Optional[float] = None,
) -> nn.Conv2d:
    conv = nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2)
    if not residual:
        gain = 1.0
    elif residual_gain is not None:
        gain = residual_gain
    else:
        gain = math.sqrt(2.0) if init == "xavier_uniform" else 1.0
    init_weights(conv, init, gain=gain)
    return _spectral_norm(conv) if spectral_norm else conv


class GeneratorResBlock(nn.Module):
    """norm → ReLU → nearest ×2 → conv3 → norm → ReLU → conv3, plus the shortcut ×2 → conv1.

    The 1×1 shortcut conv exists when the block upsamples or changes the channel count,
    as in the reference (``learnable_sc = in_channels != out_channels or upsample``);
    otherwise the shortcut is the identity. ``norm`` chooses the two normalizations:

    * ``"batch"``: BatchNorm2d with its own affine (unconditional SNGAN);
      ``forward(x)``, any condition is ignored;
    * ``"class"``: :class:`ConditionalBatchNorm2d` by class, ``num_classes`` labels
      (SNGAN, SAGAN); ``forward(x, y)``;
    * ``"vector"``: :class:`ConditionalBatchNorm2d` by a vector of ``cond_dim`` features
      (BigGAN: shared embedding + this block's z chunk); ``forward(x, c)``.

    ``spectral_norm`` normalizes the three convs and, with ``"vector"``, the gain and bias
    projections (SAGAN and BigGAN use SN in G as well as D). With ``upsample=False`` the
    block keeps the resolution.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        *,
        norm: str = "batch",
        num_classes: int = 0,
        cond_dim: int = 0,
        upsample: bool = True,
        spectral_norm: bool = False,
        init: str = "xavier_uniform",
        residual_gain: Optional[float] = None,
    ) -> None:
        super().__init__()
        if norm not in GENERATOR_NORMS:
            raise ValueError(f"unknown norm {norm!r}; choose one of {', '.join(GENERATOR_NORMS)}")
        if norm == "class" and num_classes <= 0:
            raise ValueError('norm="class" needs num_classes > 0')
        if norm == "vector" and cond_dim <= 0:
            raise ValueError('norm="vector" needs cond_dim > 0')
        check_init_scheme(init)
        self.in_ch, self.out_ch = in_ch, out_ch
        self.norm = norm
        self.upsample = upsample

        def make_norm(channels: int) -> nn.Module:
            if norm == "batch":
                return nn.BatchNorm2d(channels)
            if norm == "class":
                return ConditionalBatchNorm2d(channels, num_classes=num_classes)
            return ConditionalBatchNorm2d(channels, cond_dim=cond_dim, spectral_norm=spectral_norm, init=init)

        self.norm1 = make_norm(in_ch)
        self.conv1 = _conv(in_ch, out_ch, 3, init=init, residual=True, spectral_norm=spectral_norm,
                           residual_gain=residual_gain)
        self.norm2 = make_norm(out_ch)
        self.conv2 = _conv(out_ch, out_ch, 3, init=init, residual=True, spectral_norm=spectral_norm,
                           residual_gain=residual_gain)
        self.shortcut: Optional[nn.Conv2d] = None
        if upsample or in_ch != out_ch:
            self.shortcut = _conv(in_ch, out_ch, 1, init=init, residual=False, spectral_norm=spectral_norm)

    @property
    def conditional(self) -> bool:
        return self.norm != "batch"

    def _normalize(self, layer: nn.Module, h: Tensor, cond: Optional[Tensor]) -> Tensor:
        return layer(h, cond) if self.conditional else layer(h)

    def forward(self, x: Tensor, cond: Optional[Tensor] = None) -> Tensor:
        h = F.relu(self._normalize(self.norm1, x, cond))
        if self.upsample:
            h = F.interpolate(h, scale_factor=2, mode="nearest")
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        h = self.conv1(h)
        h = F.relu(self._normalize(self.norm2, h, cond))
        h = self.conv2(h)
        if self.shortcut is not None:
            x = self.shortcut(x)
        return h + x

    def extra_repr(self) -> str:
        return f"{self.in_ch}, {self.out_ch}, norm={self.norm!r}, upsample={self.upsample}"


class DiscriminatorResBlock(nn.Module):
    """ReLU → conv3 → ReLU → conv3 → avgpool 2, plus the shortcut conv1 → avgpool 2.

    ``first=True`` is the reference's ``OptimizedBlock`` for the raw image: no leading
    ReLU (it would clip the image), and the shortcut pools *before* its 1×1 conv, which
    is then always present. Otherwise the shortcut conv exists when the block downsamples
    or changes the channel count (``learnable_sc`` in the reference), else the shortcut
    is the identity. ``downsample=False`` keeps the resolution (the last blocks of the
    32 px SNGAN and WGAN-GP critics).

    ``hidden_ch`` is the channel count between the two 3×3 convs: by default ``in_ch``
    as in sngan_projection's ``Block`` (``out_ch`` in its ``OptimizedBlock``); BigGAN's
    "wide" D uses ``out_ch``. ``spectral_norm`` (on by default: SNGAN, SAGAN and BigGAN
    all normalize D) normalizes all three convs.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        downsample: bool = True,
        first: bool = False,
        spectral_norm: bool = True,
        *,
        hidden_ch: Optional[int] = None,
        init: str = "xavier_uniform",
        norm: str = "none",
        residual_gain: Optional[float] = None,
    ) -> None:
        super().__init__()
        check_init_scheme(init)
        if norm not in DISCRIMINATOR_NORMS:
            raise ValueError(f"unknown norm {norm!r}; choose one of {', '.join(DISCRIMINATOR_NORMS)}")
        if norm != "none" and first:
            raise ValueError("the first block sees the raw image and has no normalization")
        self.in_ch, self.out_ch = in_ch, out_ch
        self.downsample = downsample
        self.first = first
        if hidden_ch is None:
            hidden_ch = out_ch if first else in_ch
        self.hidden_ch = hidden_ch
        # WGAN-GP's critic option: layer norm (one group over C, H, W, per-channel affine, as tflib's
        # Layernorm) before each ReLU; never BatchNorm, which would mix the penalty's examples
        self.norm1 = nn.GroupNorm(1, in_ch) if norm == "layer" else None
        self.norm2 = nn.GroupNorm(1, hidden_ch) if norm == "layer" else None
        self.conv1 = _conv(in_ch, hidden_ch, 3, init=init, residual=True, spectral_norm=spectral_norm,
                           residual_gain=residual_gain)
        self.conv2 = _conv(hidden_ch, out_ch, 3, init=init, residual=True, spectral_norm=spectral_norm,
                           residual_gain=residual_gain)
        self.shortcut: Optional[nn.Conv2d] = None
        if first or downsample or in_ch != out_ch:
            self.shortcut = _conv(in_ch, out_ch, 1, init=init, residual=False, spectral_norm=spectral_norm)

    def _pool(self, h: Tensor) -> Tensor:
        return F.avg_pool2d(h, 2) if self.downsample else h

    def _residual(self, x: Tensor) -> Tensor:
        h = x if self.first else F.relu(x if self.norm1 is None else self.norm1(x))
        h = self.conv1(h)
        h = self.conv2(F.relu(h if self.norm2 is None else self.norm2(h)))
        return self._pool(h)

    def _shortcut(self, x: Tensor) -> Tensor:
        if self.shortcut is None:
            return x
        if self.first:
            return self.shortcut(self._pool(x))
        return self._pool(self.shortcut(x))

    def forward(self, x: Tensor) -> Tensor:
        return self._residual(x) + self._shortcut(x)

    def extra_repr(self) -> str:
        return f"{self.in_ch}, {self.out_ch}, downsample={self.downsample}, first={self.first}"
