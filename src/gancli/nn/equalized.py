"""Layers from "Progressive Growing of GANs" (Karras et al. 2018), shared with StyleGAN.

* :class:`EqualizedLinear` and :class:`EqualizedConv2d` keep unit-variance weights and
  apply the He constant at run time (equalized learning rate, §4.1), with a learning-rate
  multiplier as in StyleGAN's mapping network.
* :class:`PixelNorm` normalizes each pixel's feature vector to unit RMS (§4.2).
* :class:`MinibatchStdDev` appends the standard deviation of features across a group of
  examples as extra channels, so the discriminator can see a lack of variety (§3).
* :func:`fade_in`, :func:`upscale2d` and :func:`downscale2d` are what a growing network
  needs to blend a new resolution block in (§2, Figure 2).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "EqualizedConv2d",
    "EqualizedLinear",
    "MinibatchStdDev",
    "PixelNorm",
    "downscale2d",
    "fade_in",
    "upscale2d",
]

#: √2, the He gain for (leaky) ReLU layers that ProGAN and StyleGAN v1 bake into the weight.
RELU_GAIN = math.sqrt(2.0)


def _check_lr_multiplier(lr_multiplier: float) -> None:
    if not lr_multiplier > 0:
        raise ValueError(f"lr_multiplier must be positive, got {lr_multiplier}")


class EqualizedLinear(nn.Module):
    """A linear layer with equalized learning rate (Karras et al. 2018, §4.1).

    The stored weight is drawn from N(0, 1/lr_multiplier²) and multiplied at run time by
    ``weight_gain = lr_multiplier · gain / √in_features``, so the effective weight starts as
    He-initialised N(0, gain²/in_features) whatever lr_multiplier is. The stored bias is
    ``bias_init / lr_multiplier`` and is multiplied by ``bias_gain = lr_multiplier``, so the
    effective bias starts at ``bias_init``.

    Why: Adam's step on a stored value has a size close to the learning rate whatever the
    gradient's scale, so the effective weight moves by about ``lr · weight_gain`` — a step
    that is the same fraction ``lr · lr_multiplier`` of the weight's scale in every layer,
    however wide. Under plain SGD the effective weight moves by ``lr · weight_gain²`` times
    its gradient (the runtime constant scales both the gradient and the step).

    ``gain`` defaults to √2, the He gain for (leaky) ReLU that NVlabs' StyleGAN v1
    (``get_weight(gain=np.sqrt(2))``) and ProGAN put in the weight; use ``gain=1`` for
    layers without a ReLU after them (to-RGB, the last D layer, the AdaIN affine maps).
    stylegan2-ada-pytorch (``FullyConnectedLayer``) instead uses ``lr_multiplier/√fan_in``
    and multiplies the activation's output by √2 (``bias_act`` ``def_gain``); for a bias-free
    or zero-bias pre-activation the two are the same function. stylegan2-ada also stores
    ``bias_init`` without the division by lr_multiplier, so its effective bias starts at
    ``bias_init · lr_multiplier``; it only uses a non-zero bias_init with lr_multiplier 1,
    where both agree.

    Not a subclass of nn.Linear on purpose: init helpers that walk nn.Linear modules (the
    DCGAN N(0, 0.02) init) must leave the unit-variance stored weights alone.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
        *,
        gain: float = RELU_GAIN,
    ):
        super().__init__()
        _check_lr_multiplier(lr_multiplier)
        self.in_features = in_features
        self.out_features = out_features
        self.lr_multiplier = lr_multiplier
        self.gain = gain
        self.weight_gain = lr_multiplier * gain / math.sqrt(in_features)
        self.bias_gain = lr_multiplier
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        if bias:
            self.bias = nn.Parameter(torch.full((out_features,), bias_init / lr_multiplier))
        else:
            self.register_parameter("bias", None)

    @property
    def effective_weight(self) -> Tensor:
        """The weight the layer computes with: stored weight · weight_gain."""
        return self.weight * self.weight_gain

    @property
    def effective_bias(self) -> Tensor | None:
        """The bias the layer adds: stored bias · bias_gain (None without a bias)."""
        return None if self.bias is None else self.bias * self.bias_gain

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.effective_weight, self.effective_bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, lr_multiplier={self.lr_multiplier}, gain={self.gain:.4g}"
        )


class EqualizedConv2d(nn.Module):
    """A 2-D convolution with equalized learning rate (Karras et al. 2018, §4.1).

    The same parametrisation as :class:`EqualizedLinear` with fan_in = in_channels·k·k:
    stored weight N(0, 1/lr_multiplier²), runtime ``weight_gain = lr_multiplier · gain /
    √fan_in``, stored bias 0 scaled by lr_multiplier. ``gain`` defaults to √2 (StyleGAN v1
    ``get_weight``, ProGAN); its to-RGB 1×1 convolutions use ``gain=1``. ``padding``
    defaults to ``kernel_size // 2``, which keeps the size for odd kernels like TF's
    ``padding='SAME'`` in the NVlabs code (zeros outside the image).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int | None = None,
        bias: bool = True,
        lr_multiplier: float = 1.0,
        *,
        gain: float = RELU_GAIN,
    ):
        super().__init__()
        _check_lr_multiplier(lr_multiplier)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = kernel_size // 2 if padding is None else padding
        self.lr_multiplier = lr_multiplier
        self.gain = gain
        self.weight_gain = lr_multiplier * gain / math.sqrt(in_channels * kernel_size * kernel_size)
        self.bias_gain = lr_multiplier
        self.weight = nn.Parameter(
            torch.randn(out_channels, in_channels, kernel_size, kernel_size) / lr_multiplier
        )
        if bias:
            self.bias = nn.Parameter(torch.zeros(out_channels))
        else:
            self.register_parameter("bias", None)

    @property
    def effective_weight(self) -> Tensor:
        """The kernel the layer convolves with: stored weight · weight_gain."""
        return self.weight * self.weight_gain

    @property
    def effective_bias(self) -> Tensor | None:
        """The bias the layer adds: stored bias · bias_gain (None without a bias)."""
        return None if self.bias is None else self.bias * self.bias_gain

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.effective_weight, self.effective_bias, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}, "
            f"lr_multiplier={self.lr_multiplier}, gain={self.gain:.4g}"
        )


class PixelNorm(nn.Module):
    """Pixelwise feature vector normalization (Karras et al. 2018, §4.2).

    ``x / sqrt(mean over channels of x² + eps)``, channels on dim 1, for (N, C) and
    (N, C, H, W) inputs; eps = 1e-8 as in ProGAN and StyleGAN v1 ``pixel_norm``. StyleGAN
    applies it to z before the mapping network.
    """

    def __init__(self, eps: float = 1e-8):
        super().__init__()
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + self.eps)

    def extra_repr(self) -> str:
        return f"eps={self.eps}"


class MinibatchStdDev(nn.Module):
    """Minibatch standard deviation (Karras et al. 2018, §3), appended as constant channels.

    As stylegan2-ada-pytorch ``MinibatchStdLayer`` and StyleGAN v1
    ``minibatch_stddev_layer``: the batch of N is split into N/G groups of
    G = min(group_size, N) examples, the group members of example n being the examples
    n + k·(N/G) (a strided split, as the references' reshape to (G, N/G, ...) makes it);
    the channels are split into ``num_channels`` parts of C/num_channels. For every group
    and channel part, the standard deviation over the group of each feature (√(var + 1e-8),
    biased variance) is averaged over that part's channels and all pixels, and the result
    is appended as one constant H×W channel per part. Output: (N, C + num_channels, H, W).

    ``group_size=None`` uses the whole batch as one group. N must be divisible by G and C
    by num_channels; ProGAN and StyleGAN use group_size 4 and one channel.
    """

    def __init__(self, group_size: int | None = 4, num_channels: int = 1):
        super().__init__()
        if group_size is not None and group_size < 1:
            raise ValueError(f"group_size must be at least 1 (or None for the whole batch), got {group_size}")
        if num_channels < 1:
            raise ValueError(f"num_channels must be at least 1, got {num_channels}")
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"MinibatchStdDev expects (N, C, H, W), got {tuple(x.shape)}")
        n, c, h, w = x.shape
        group = n if self.group_size is None else min(self.group_size, n)
        if n % group:
            raise ValueError(
                f"MinibatchStdDev: the batch of {n} is not divisible by the group size {group}; "
                "use a batch (per process) that is a multiple of the group size"
            )
        if c % self.num_channels:
            raise ValueError(f"MinibatchStdDev: {c} channels do not split into {self.num_channels} parts")
        parts = self.num_channels
        # statistics in float32 (as StyleGAN v1 casts): a variance of fp16 activations underflows
        y = x.float().reshape(group, n // group, parts, c // parts, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0)
        y = (y + 1e-8).sqrt().mean(dim=(2, 3, 4))  # (N/G, parts)
        y = y.to(x.dtype).reshape(1, n // group, parts, 1, 1).expand(group, -1, -1, h, w)
        return torch.cat([x, y.reshape(n, parts, h, w)], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"


def fade_in(alpha: float | Tensor, old: Tensor, new: Tensor) -> Tensor:
    """Blend a new block in: ``old + α·(new − old)``; α = 0 gives ``old``, α = 1 ``new``.

    ProGAN (§2, Figure 2) ramps α linearly from 0 to 1 while a resolution fades in, in G
    (upsampled old to-RGB output vs. the new block's) and in D (the downscaled image through
    the old from-RGB vs. the new block). A float α outside [0, 1] is an error; a tensor α is
    used as given (checking it would synchronise with the device).
    """
    if not isinstance(alpha, Tensor) and not 0.0 <= alpha <= 1.0:
        raise ValueError(f"fade_in alpha must lie in [0, 1], got {alpha}")
    return torch.lerp(old, new, alpha)


def upscale2d(x: Tensor, factor: int = 2) -> Tensor:
    """Nearest-neighbour upsampling of (N, C, H, W) by an integer factor (ProGAN ``upscale2d``).

    Written as a broadcast and reshape rather than ``F.interpolate`` so it is a plain view
    op whose gradients of any order are exact (gradient penalties differentiate through it).
    """
    if factor < 1:
        raise ValueError(f"upscale factor must be at least 1, got {factor}")
    if factor == 1:
        return x
    n, c, h, w = x.shape
    return x.reshape(n, c, h, 1, w, 1).expand(n, c, h, factor, w, factor).reshape(n, c, h * factor, w * factor)


def downscale2d(x: Tensor, factor: int = 2) -> Tensor:
    """Average pooling over factor×factor blocks of (N, C, H, W) (ProGAN ``downscale2d``).

    H and W must be multiples of the factor, so the size divides exactly.
    """
    if factor < 1:
        raise ValueError(f"downscale factor must be at least 1, got {factor}")
    if factor == 1:
        return x
    if x.shape[-1] % factor or x.shape[-2] % factor:
        raise ValueError(f"downscale2d: size {tuple(x.shape[-2:])} is not divisible by {factor}")
    return F.avg_pool2d(x, factor)
