"""StyleGAN2's layers: modulated convolution with weight demodulation, its noise input, to-RGB, and D's convolutions.

Karras et al. 2020 §2.2 and Figure 2(c–d); the details follow NVlabs/stylegan2-ada-pytorch
``training/networks.py`` (``modulated_conv2d``, ``SynthesisLayer``, ``ToRGBLayer``,
``Conv2dLayer``, ``FullyConnectedLayer``) and ``torch_utils/ops/conv2d_resample.py``:

* modulation scales the convolution's input channels by the style s = A(w) (an affine map
  of w whose bias starts at 1); demodulation divides each output channel by
  σ_j = √(Σ_{i,k} (s_i·w_ijk)² + 1e-8), so that unit-variance inputs give unit-variance
  outputs (for independent inputs: §2.2, Eq. 3). Two equal forms: *fused* (per-example
  weights, one grouped convolution over the batch) and *unfused* (scale the activations by
  s, convolve with the shared weight, scale the output by 1/σ), which NVlabs use in training;
* noise and bias come after the convolution, outside the style block ("noise and bias
  outside"): x + strength·noise, then bias and leaky ReLU(0.2) times √2 (``bias_act``'s
  gain). The noise strength is one learned scalar per layer (v1 had one per channel);
* no equalized-LR constant on the modulated weights (demodulation makes the output
  independent of their scale); to-RGB is not demodulated and scales its styles by
  1/√fan_in instead;
* upsampling (G) is a stride-2 transposed convolution followed by the [1, 3, 3, 1] filter
  with gain 4; downsampling (D) filters first, then convolves with stride 2; a 1×1 skip
  convolution in D filters, decimates, then convolves — with the paddings of
  ``conv2d_resample`` (:class:`gancli.nn.Blur` does the filtering).

Not implemented: NVlabs' fp16 paths (``num_fp16_res``, ``conv_clamp``, the pre-normalisation
of weights for fp16 inputs); under bf16 autocast the layers run as they are.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gancli.nn import Blur, EqualizedConv2d, EqualizedLinear

NEGATIVE_SLOPE = 0.2
ACT_GAIN = math.sqrt(2.0)  # bias_act's def_gain for lrelu
RESAMPLE_TAPS = (1.0, 3.0, 3.0, 1.0)


def lrelu_gain(x: Tensor, gain: float = 1.0) -> Tensor:
    """Leaky ReLU (0.2) times √2·gain: NVlabs ``bias_act(act='lrelu')``; the bias is added before."""
    return F.leaky_relu(x, NEGATIVE_SLOPE) * (ACT_GAIN * gain)


def demodulation_coefficients(weight: Tensor, styles: Tensor, eps: float = 1e-8) -> Tensor:
    """(N, out) values 1/√(Σ_{i,k} (s_i·w_oik)² + eps) for weight (out, in, k, k) and styles (N, in)."""
    w = weight.unsqueeze(0) * styles.reshape(styles.shape[0], 1, -1, 1, 1)
    return (w.square().sum(dim=(2, 3, 4)) + eps).rsqrt()


def modulated_conv2d(
    x: Tensor,
    weight: Tensor,
    styles: Tensor,
    *,
    demodulate: bool = True,
    up: int = 1,
    padding: int = 0,
    blur: Optional[nn.Module] = None,
    fused: bool = False,
) -> Tensor:
    """A modulated (and demodulated) convolution of x (N, in, H, W) with weight (out, in, k, k), styles (N, in).

    ``up=2``: a stride-2 transposed convolution, then ``blur`` (the [1, 3, 3, 1] filter with
    gain 4 and the padding ``conv2d_resample`` gives it). ``fused``: per-example weights in
    one grouped convolution; otherwise the activations are scaled around one shared
    convolution. Both compute the same function.
    """
    n, in_channels = x.shape[0], x.shape[1]
    out_channels, _, kh, kw = weight.shape
    if styles.shape != (n, in_channels):
        raise ValueError(f"modulated_conv2d: styles must be ({n}, {in_channels}), got {tuple(styles.shape)}")
    dcoefs = demodulation_coefficients(weight, styles) if demodulate else None
    if fused:
        w = weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)
        if dcoefs is not None:
            w = w * dcoefs.reshape(n, -1, 1, 1, 1)
        x = x.reshape(1, n * in_channels, *x.shape[2:])
        if up > 1:
            # conv_transpose2d wants (in, out / groups, k, k): per example (in, out)
            w = w.transpose(1, 2).reshape(n * in_channels, out_channels, kh, kw)
            x = F.conv_transpose2d(x, w.to(x.dtype), stride=up, groups=n)
        else:
            x = F.conv2d(x, w.reshape(n * out_channels, in_channels, kh, kw).to(x.dtype), padding=padding, groups=n)
        x = x.reshape(n, out_channels, *x.shape[2:])
        return blur(x) if up > 1 else x
    x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
    if up > 1:
        x = blur(F.conv_transpose2d(x, weight.transpose(0, 1).to(x.dtype), stride=up))
    else:
        x = F.conv2d(x, weight.to(x.dtype), padding=padding)
    if dcoefs is not None:
        x = x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
    return x


def _transposed_blur(kernel_size: int, up: int, padding: int, taps: Sequence[float]) -> Blur:
    """The filter after an up-``up`` transposed convolution, with conv2d_resample's padding."""
    f = len(taps)
    before = padding + (f + up - 1) // 2 - (kernel_size - 1)
    after = padding + (f - up) // 2 - (kernel_size - up)
    return Blur(taps, padding=(before, after), gain=float(up * up))


class NoiseInput(nn.Module):
    """Per-pixel noise (N, 1, H, W) times one learned strength (zeros at first), with a stored map for "const"."""

    noise_const: Tensor

    def __init__(self, resolution: int):
        super().__init__()
        self.resolution = resolution
        self.strength = nn.Parameter(torch.zeros(()))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))

    def forward(self, x: Tensor, noise_mode: str = "random") -> Tensor:
        if noise_mode == "none":
            return x
        if noise_mode == "const":
            noise = self.noise_const.to(x.dtype)
        elif noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device, dtype=x.dtype)
        else:
            raise ValueError(f"noise_mode must be one of random, const, none, got {noise_mode!r}")
        return x + self.strength.to(x.dtype) * noise

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}"


class ModulatedConv(nn.Module):
    """NVlabs ``SynthesisLayer``: modulated 3×3 conv (up ×2 optional), noise, bias, leaky ReLU·√2."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, *, up: int = 1,
                 kernel_size: int = 3, taps: Sequence[float] = RESAMPLE_TAPS):
        super().__init__()
        self.in_channels, self.out_channels, self.resolution, self.up = in_channels, out_channels, resolution, up
        self.padding = kernel_size // 2
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1.0, gain=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.noise = NoiseInput(resolution)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.blur = _transposed_blur(kernel_size, up, self.padding, taps) if up > 1 else None

    def forward(self, x: Tensor, w: Tensor, noise_mode: str = "random", fused: bool = False) -> Tensor:
        x = modulated_conv2d(x, self.weight, self.affine(w), up=self.up, padding=self.padding, blur=self.blur,
                             fused=fused)
        x = self.noise(x, noise_mode)
        return lrelu_gain(x + self.bias.to(x.dtype).reshape(1, -1, 1, 1))

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, resolution={self.resolution}, up={self.up}"


class ToRGB(nn.Module):
    """NVlabs ``ToRGBLayer``: a modulated 1×1 conv without demodulation (styles × 1/√in), bias, linear."""

    def __init__(self, in_channels: int, channels: int, w_dim: int):
        super().__init__()
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1.0, gain=1.0)
        self.weight = nn.Parameter(torch.randn(channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels)

    def forward(self, x: Tensor, w: Tensor, fused: bool = False) -> Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused=fused)
        return x + self.bias.to(x.dtype).reshape(1, -1, 1, 1)


class Conv(nn.Module):
    """NVlabs ``Conv2dLayer`` for D: equalized weights (1/√fan_in), optional [1, 3, 3, 1] downsampling, bias, activation.

    ``down=2`` with a 3×3 kernel: filter (padding 2), then a stride-2 convolution; with a 1×1
    kernel: filter and decimate, then convolve. ``activation``: "lrelu" (×√2·gain) or "linear" (×gain).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, bias: bool = True,
                 activation: str = "lrelu", down: int = 1, taps: Sequence[float] = RESAMPLE_TAPS):
        super().__init__()
        if activation not in ("lrelu", "linear"):
            raise ValueError(f"activation must be lrelu or linear, got {activation!r}")
        self.conv = EqualizedConv2d(in_channels, out_channels, kernel_size, bias=bias, gain=1.0)
        self.activation, self.down, self.kernel_size = activation, down, kernel_size
        self.blur: Optional[Blur] = None
        if down > 1 and kernel_size == 1:
            self.blur = Blur(taps, down=down)
        elif down > 1:
            f, p = len(taps), kernel_size // 2
            self.blur = Blur(taps, padding=(p + (f - down + 1) // 2, p + (f - down) // 2))

    def forward(self, x: Tensor, gain: float = 1.0) -> Tensor:
        weight = self.conv.effective_weight.to(x.dtype)
        if self.down > 1 and self.kernel_size == 1:
            x = F.conv2d(self.blur(x), weight)
        elif self.down > 1:
            x = F.conv2d(self.blur(x), weight, stride=self.down)
        else:
            x = F.conv2d(x, weight, padding=self.kernel_size // 2)
        bias = self.conv.effective_bias
        if bias is not None:
            x = x + bias.to(x.dtype).reshape(1, -1, 1, 1)
        return lrelu_gain(x, gain) if self.activation == "lrelu" else x * gain


class Dense(nn.Module):
    """NVlabs ``FullyConnectedLayer`` for D: equalized weights (1/√fan_in), bias, lrelu·√2 or linear."""

    def __init__(self, in_features: int, out_features: int, activation: str = "lrelu"):
        super().__init__()
        self.linear = EqualizedLinear(in_features, out_features, gain=1.0)
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        x = self.linear(x)
        return lrelu_gain(x) if self.activation == "lrelu" else x
