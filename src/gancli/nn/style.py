"""Layers from "A Style-Based Generator Architecture for GANs" (StyleGAN v1, Karras et al. 2019).

* :class:`MappingNetwork` maps z (and an optional class) to w through an 8-layer MLP with a
  0.01 learning-rate multiplier, tracks the average w and truncates towards it (§2, §B).
* :class:`AdaIN` normalizes each feature map and applies a per-channel scale and bias
  computed from w (§2, Eq. 1).
* :class:`NoiseInjection` adds per-pixel Gaussian noise with a learned per-channel
  strength (§2, §3.2), sampled afresh, read from a stored map, or left out.
* :class:`ConstantInput` is the learned 4×4 tensor the synthesis network starts from.
* :class:`Blur`, :class:`BlurUpsample` and :class:`BlurDownsample` low-pass filter
  activations around resampling with the [1, 2, 1] filter (§2, citing Zhang 2019); ``Blur``
  also takes even filters with zero-insertion upsampling or decimation, StyleGAN2's
  [1, 3, 3, 1] ``upfirdn2d`` resampling.

References for the details are NVlabs/stylegan ``training/networks_stylegan.py`` (v1) and
NVlabs/stylegan2-ada-pytorch ``training/networks.py`` (its PyTorch successor).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gancli.nn.equalized import EqualizedLinear, PixelNorm, downscale2d, upscale2d

__all__ = [
    "AdaIN",
    "Blur",
    "BlurDownsample",
    "BlurUpsample",
    "ConstantInput",
    "MappingNetwork",
    "NoiseInjection",
    "NoiseMode",
]

NoiseMode = Literal["random", "const", "none"]
_NOISE_MODES = ("random", "const", "none")


class MappingNetwork(nn.Module):
    """z (+ class) → w: pixel norm, then ``num_layers`` equalized dense + leaky ReLU(0.2).

    Defaults are StyleGAN v1's ``G_mapping``: 8 layers, hidden width = w_dim, learning-rate
    multiplier 0.01, z normalized by :class:`PixelNorm`, the activation after every layer
    including the last, gain √2 in the weights. With ``num_classes > 0`` a class (an integer
    label, or a float row of num_classes weights such as a one-hot) is embedded by an
    equalized linear map into ``embed_dim`` features (default w_dim), normalized to unit
    RMS on its own and concatenated to the normalized z, as stylegan2-ada-pytorch's
    ``MappingNetwork`` does (v1 instead normalized the concatenation as one vector). The
    embedding is always normalized; ``normalize_z`` concerns z only.

    The buffer ``w_avg`` (zeros at first) tracks the mean w: every training-mode forward
    with ``update_w_avg=True`` sets ``w_avg ← β·w_avg + (1−β)·mean_batch(w)``, β =
    ``w_avg_beta`` = 0.995 (v1 ``dlatent_avg_beta``, stylegan2-ada). Eval-mode calls never
    move it; the second mapping call of style mixing should pass ``update_w_avg=False``.
    It is a buffer, so checkpoints (and an EMA copy, whose buffers are copied) carry it.

    With ``num_ws`` set, w is broadcast to (N, num_ws, w_dim), one copy per synthesis layer;
    otherwise the output is (N, w_dim). ``psi``/``cutoff`` apply :meth:`truncate`.
    """

    w_avg: Tensor

    def __init__(
        self,
        z_dim: int,
        w_dim: int,
        num_layers: int = 8,
        *,
        lr_multiplier: float = 0.01,
        normalize_z: bool = True,
        w_avg_beta: float = 0.995,
        num_classes: int = 0,
        embed_dim: int | None = None,
        hidden_dim: int | None = None,
        num_ws: int | None = None,
        negative_slope: float = 0.2,
        truncation_cutoff: int | None = None,
    ):
        super().__init__()
        if z_dim < 1 or w_dim < 1 or num_layers < 1:
            raise ValueError(f"MappingNetwork needs z_dim, w_dim and num_layers ≥ 1, got {z_dim}, {w_dim}, {num_layers}")
        if not 0.0 <= w_avg_beta < 1.0:
            raise ValueError(f"w_avg_beta must lie in [0, 1), got {w_avg_beta}")
        if num_ws is not None and num_ws < 1:
            raise ValueError(f"num_ws must be at least 1, got {num_ws}")
        self.z_dim = z_dim
        self.w_dim = w_dim
        self.num_classes = num_classes
        self.num_ws = num_ws
        self.w_avg_beta = w_avg_beta
        self.truncation_cutoff = truncation_cutoff  # the layers ψ reaches when a caller names none (None: all)
        self.negative_slope = negative_slope
        self.normalize_z = normalize_z
        self.pixel_norm = PixelNorm()

        in_features = z_dim
        if num_classes > 0:
            embed_dim = w_dim if embed_dim is None else embed_dim
            # a linear map of the class, not followed by a ReLU: gain 1
            self.embed = EqualizedLinear(num_classes, embed_dim, gain=1.0)
            in_features += embed_dim
        else:
            self.register_module("embed", None)
        hidden_dim = w_dim if hidden_dim is None else hidden_dim
        widths = [in_features] + [hidden_dim] * (num_layers - 1) + [w_dim]
        self.layers = nn.ModuleList(
            EqualizedLinear(fan_in, fan_out, lr_multiplier=lr_multiplier)
            for fan_in, fan_out in zip(widths[:-1], widths[1:])
        )
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def _class_rows(self, y: Tensor) -> Tensor:
        if y.dim() == 1 and not y.is_floating_point():
            return F.one_hot(y.long(), self.num_classes).float()
        if y.dim() == 2 and y.shape[1] == self.num_classes:
            return y.float()
        raise ValueError(
            f"MappingNetwork expects class labels of shape (N,) (integers) or (N, {self.num_classes}), "
            f"got {tuple(y.shape)} {y.dtype}"
        )

    def _inputs(self, z: Tensor, y: Tensor | None) -> Tensor:
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"MappingNetwork expects z of shape (N, {self.z_dim}), got {tuple(z.shape)}")
        x = self.pixel_norm(z) if self.normalize_z else z
        if self.embed is None:
            if y is not None:
                raise ValueError("this MappingNetwork has no classes (num_classes=0) but got labels")
            return x
        if y is None:
            raise ValueError(f"this MappingNetwork is conditional ({self.num_classes} classes): pass labels y")
        return torch.cat([x, self.pixel_norm(self.embed(self._class_rows(y)))], dim=1)

    @torch.no_grad()
    def _track_w_avg(self, w: Tensor) -> None:
        self.w_avg.lerp_(w.detach().mean(dim=0).to(self.w_avg.dtype), 1.0 - self.w_avg_beta)

    def forward(
        self,
        z: Tensor,
        y: Tensor | None = None,
        *,
        psi: float = 1.0,
        cutoff: int | None = None,
        update_w_avg: bool = True,
    ) -> Tensor:
        w = self._inputs(z, y)
        for layer in self.layers:
            w = F.leaky_relu(layer(w), self.negative_slope)
        # an empty batch has no mean: it would turn w_avg into NaN for good
        if self.training and update_w_avg and w.shape[0] > 0:
            self._track_w_avg(w)
        if self.num_ws is not None:
            w = w.unsqueeze(1).expand(-1, self.num_ws, -1)
        if psi != 1.0:
            w = self.truncate(w, psi, cutoff)
        return w

    def truncate(self, w: Tensor, psi: float, cutoff: int | None = None) -> Tensor:
        """The truncation trick in W (§B): ``w' = w_avg + ψ·(w − w_avg)``.

        ``w`` is (N, w_dim) or broadcast (N, num_ws, w_dim). With ``cutoff`` only the first
        ``cutoff`` layers of a broadcast w are truncated (the coarse styles; v1 used ψ 0.7,
        cutoff 8 at 1024²) and the others pass unchanged; ``cutoff=None`` truncates every
        layer unless the network was built with a default ``truncation_cutoff``. ψ = 1 returns w;
        ψ = 0 returns w_avg for every input. Returns a new tensor.
        """
        if w.shape[-1] != self.w_dim or w.dim() not in (2, 3):
            raise ValueError(f"truncate expects (N, {self.w_dim}) or (N, num_ws, {self.w_dim}), got {tuple(w.shape)}")
        truncated = torch.lerp(self.w_avg.to(w.dtype), w, psi)
        if cutoff is None and w.dim() == 3:
            cutoff = self.truncation_cutoff
        if cutoff is None:
            return truncated
        if w.dim() != 3:
            raise ValueError("truncate: a cutoff needs a broadcast w of shape (N, num_ws, w_dim)")
        if cutoff < 0:
            raise ValueError(f"truncation cutoff must be ≥ 0, got {cutoff}")
        return torch.cat([truncated[:, :cutoff], w[:, cutoff:]], dim=1)

    def extra_repr(self) -> str:
        return (
            f"z_dim={self.z_dim}, w_dim={self.w_dim}, num_classes={self.num_classes}, "
            f"num_ws={self.num_ws}, w_avg_beta={self.w_avg_beta}"
        )


class AdaIN(nn.Module):
    """Adaptive instance normalization (StyleGAN Eq. 1): ``scale(w) · norm(x) + shift(w)``.

    ``norm`` subtracts each feature map's mean and divides by its standard deviation over
    H×W (biased, eps 1e-8 inside the root, computed in float32, as v1 ``instance_norm``).
    ``scale`` and ``shift`` are equalized linear maps of w with gain 1 (v1 ``style_mod``
    uses ``gain=1``). The scale map's bias starts at 1 and the shift map's at 0, so a
    fresh layer is close to a plain instance norm. v1 stores both in one 2C-wide dense
    layer with bias 0 and adds 1 to the scale half at run time; that is the same function
    and the same gradients (converting v1 weights: split the dense layer in halves, add 1
    to the scale half's bias).
    """

    def __init__(self, channels: int, w_dim: int, eps: float = 1e-8):
        super().__init__()
        self.channels = channels
        self.w_dim = w_dim
        self.eps = eps
        self.scale = EqualizedLinear(w_dim, channels, bias_init=1.0, gain=1.0)
        self.shift = EqualizedLinear(w_dim, channels, bias_init=0.0, gain=1.0)

    def styles(self, w: Tensor) -> tuple[Tensor, Tensor]:
        """The per-example, per-channel (scale, shift), each of shape (N, channels)."""
        return self.scale(w), self.shift(w)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"AdaIN({self.channels}) expects (N, {self.channels}, H, W), got {tuple(x.shape)}")
        xf = x.float()
        xf = xf - xf.mean(dim=(2, 3), keepdim=True)
        normalized = (xf * torch.rsqrt(xf.square().mean(dim=(2, 3), keepdim=True) + self.eps)).to(x.dtype)
        scale, shift = self.styles(w)
        return normalized * scale[:, :, None, None] + shift[:, :, None, None]

    def extra_repr(self) -> str:
        return f"{self.channels}, w_dim={self.w_dim}, eps={self.eps}"


class NoiseInjection(nn.Module):
    """Adds ``strength[c] · noise`` with one N(0, 1) noise map per example, shared by channels.

    As v1 ``apply_noise``: the noise is (N, 1, H, W), the learned ``strength`` is one value
    per channel, initialised to 0 (stylegan2-ada learns a single scalar instead). The layer
    lives at one ``resolution`` and registers the buffer ``noise_const`` (resolution ×
    resolution, drawn from N(0, 1) when the layer is built), so a checkpoint carries it.

    ``noise_mode``: "random" draws fresh noise on every call (from torch's global generator,
    so ``torch.manual_seed`` makes it repeatable), "const" adds ``noise_const`` (the same
    map for every example and every call), "none" adds nothing. An explicit ``noise``
    tensor, broadcastable to (N, 1, H, W), overrides the mode.
    """

    noise_const: Tensor

    def __init__(self, channels: int, resolution: int):
        super().__init__()
        self.channels = channels
        self.resolution = resolution
        self.strength = nn.Parameter(torch.zeros(channels))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))

    def forward(self, x: Tensor, noise_mode: NoiseMode = "random", *, noise: Tensor | None = None) -> Tensor:
        if noise_mode not in _NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {', '.join(_NOISE_MODES)}, got {noise_mode!r}")
        n, c, h, w = x.shape
        if c != self.channels or (h, w) != (self.resolution, self.resolution):
            raise ValueError(
                f"NoiseInjection({self.channels}, resolution={self.resolution}) expects "
                f"(N, {self.channels}, {self.resolution}, {self.resolution}), got {tuple(x.shape)}"
            )
        if noise is None:
            if noise_mode == "none":
                return x
            if noise_mode == "const":
                noise = self.noise_const.to(x.dtype)
            else:
                noise = torch.randn(n, 1, h, w, device=x.device, dtype=x.dtype)
        return x + self.strength.to(x.dtype)[:, None, None] * noise

    def extra_repr(self) -> str:
        return f"{self.channels}, resolution={self.resolution}"


class ConstantInput(nn.Module):
    """The learned (channels, size, size) tensor the synthesis network starts from, per example.

    ``init="ones"`` is StyleGAN v1's (``G_synthesis`` ``const``, initialised to ones, the
    default here); ``init="randn"`` is StyleGAN2's (stylegan2-ada ``SynthesisBlock``).
    """

    def __init__(self, channels: int, size: int = 4, init: Literal["ones", "randn"] = "ones"):
        super().__init__()
        if init not in ("ones", "randn"):
            raise ValueError(f"ConstantInput init must be 'ones' or 'randn', got {init!r}")
        self.channels = channels
        self.size = size
        start = torch.ones if init == "ones" else torch.randn
        self.const = nn.Parameter(start(channels, size, size))

    def forward(self, batch_size: int) -> Tensor:
        return self.const.unsqueeze(0).expand(batch_size, -1, -1, -1)

    def extra_repr(self) -> str:
        return f"{self.channels}, size={self.size}"


class Blur(nn.Module):
    """Depthwise FIR filter with a separable kernel, optionally with up- or downsampling (``upfirdn``).

    The kernel is the outer product of ``taps`` with itself, normalized to sum 1 (DC gain 1)
    when ``normalize`` is true; [1, 2, 1] is StyleGAN v1's ``blur_filter``, [1, 3, 3, 1]
    StyleGAN2's ``resample_filter``. The steps are those of stylegan2-ada-pytorch's
    ``upfirdn2d``: insert ``up − 1`` zeros after every pixel (the kernel is then scaled by
    ``gain``, default ``up²``, so a constant image keeps its value), pad with zeros
    (``padding`` = (before, after), the same on both axes; negative values crop), convolve
    ("valid"; ``flip_filter=True`` correlates instead, which matters for asymmetric taps), keep
    every ``down``-th pixel.

    Default padding: without resampling the taps must be odd in number and the padding is
    ``len(taps) // 2`` on both sides, so the filter is centred and the size kept (v1's
    ``depthwise_conv2d`` with ``padding='SAME'``); a constant image is kept exactly except
    within ``len(taps) // 2`` pixels of the border. An even filter has no centre tap: it
    moves the grid by half a pixel, which only resampling can absorb, so without ``up``/``down``
    it needs an explicit ``padding``. With ``up`` the default is stylegan2-ada's
    ``upsample2d`` padding ((k + up − 1) // 2, (k − up) // 2), with ``down`` its
    ``downsample2d`` padding ((k − down + 1) // 2, (k − down) // 2): the output is exactly
    ``up``× or 1/``down`` the input size, and for [1, 3, 3, 1] the new pixels sit where the
    sampling grids' centres are (a linear ramp resamples to the same ramp away from the border:
    tests/test_nn_style.py). The kernel is a non-persistent buffer: it follows the module across
    devices but stays out of checkpoints, since the taps are a constructor argument.
    """

    kernel: Tensor

    def __init__(
        self,
        taps: Sequence[float] = (1.0, 2.0, 1.0),
        normalize: bool = True,
        *,
        up: int = 1,
        down: int = 1,
        padding: int | tuple[int, int] | None = None,
        gain: float | None = None,
        flip_filter: bool = False,
    ):
        super().__init__()
        taps_1d = torch.as_tensor(list(taps), dtype=torch.float32)
        if taps_1d.dim() != 1 or taps_1d.numel() < 1:
            raise ValueError(f"Blur needs a 1-D list of taps, got {list(taps)}")
        if up < 1 or down < 1 or (up > 1 and down > 1):
            raise ValueError(f"Blur resamples up or down by an integer factor ≥ 1 (not both), got up={up}, down={down}")
        k = taps_1d.numel()
        if padding is None:
            if up > 1:
                padding = ((k + up - 1) // 2, (k - up) // 2)
            elif down > 1:
                padding = ((k - down + 1) // 2, (k - down) // 2)
            elif k % 2 == 1:
                padding = (k // 2, k // 2)
            else:
                raise ValueError(
                    f"Blur without resampling needs an odd number of taps to stay centred, got {list(taps)}; "
                    "an even filter moves the grid by half a pixel: use it with up or down, or give padding"
                )
        elif isinstance(padding, int):
            padding = (padding, padding)
        if normalize:
            taps_1d = taps_1d / taps_1d.sum()
        self.taps = tuple(float(t) for t in taps)
        self.normalize = normalize
        self.up = int(up)
        self.down = int(down)
        self.padding = (int(padding[0]), int(padding[1]))
        self.flip_filter = bool(flip_filter)
        # the 2-D gain up² is split over the two 1-D passes
        self.gain = float(up * up) if gain is None else float(gain)
        self.register_buffer("kernel", taps_1d * math.sqrt(self.gain), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return self._filter(x, planes=False)

    def forward_planes(self, x: Tensor) -> Tensor:
        """The same result, filtering every (N·C) plane with one 1-channel kernel instead of a depthwise
        kernel expanded to the input's channels: graphs traced for export (gancli.export) see the kernel
        as a constant of known shape."""
        return self._filter(x, planes=True)

    def _filter(self, x: Tensor, *, planes: bool) -> Tensor:
        n, channels, h, w = x.shape
        if self.up > 1:
            # zero insertion: each pixel followed by up − 1 zeros along both axes
            x = F.pad(x.reshape(n, channels, h, 1, w, 1), (0, self.up - 1, 0, 0, 0, self.up - 1))
            x = x.reshape(n, channels, h * self.up, w * self.up)
        before, after = self.padding
        if before < 0 or after < 0:  # negative padding crops, as upfirdn2d's
            x = x[..., max(-before, 0): x.shape[-2] - max(-after, 0), max(-before, 0): x.shape[-1] - max(-after, 0)]
        x = F.pad(x, (max(before, 0), max(after, 0), max(before, 0), max(after, 0)))
        k = self.kernel.numel()
        # flipped taps: a convolution, as upfirdn2d's default; flip_filter=True correlates (conv2d's own sense)
        kernel = (self.kernel if self.flip_filter else self.kernel.flip(0)).to(x.dtype)
        # two 1-D passes: the same result as the k×k outer-product kernel at 2k instead of k² taps
        if planes:
            y = x.reshape(-1, 1, x.shape[-2], x.shape[-1])
            y = F.conv2d(F.conv2d(y, kernel.view(1, 1, 1, k)), kernel.view(1, 1, k, 1))
            x = y.reshape(n, channels, y.shape[-2], y.shape[-1])
        else:
            x = F.conv2d(x, kernel.view(1, 1, 1, k).expand(channels, 1, 1, k), groups=channels)
            x = F.conv2d(x, kernel.view(1, 1, k, 1).expand(channels, 1, k, 1), groups=channels)
        if self.down > 1:
            x = x[..., :: self.down, :: self.down]
        return x

    def extra_repr(self) -> str:
        extra = "" if self.up == self.down == 1 else f", up={self.up}, down={self.down}"
        return f"taps={list(self.taps)}, normalize={self.normalize}{extra}, padding={self.padding}, gain={self.gain:g}"


class BlurUpsample(nn.Module):
    """Nearest ×2 upsampling followed by :class:`Blur`: (N, C, H, W) → (N, C, 2H, 2W).

    v1's generator puts its 3×3 convolution in between (upsample → conv → blur); the conv
    and the blur are both linear and shift-invariant, so they commute except at the
    border, where zero padding makes the order matter. A family that needs v1's exact
    border values composes :func:`~gancli.nn.equalized.upscale2d`, its conv and
    :class:`Blur` itself. Not implemented: v1's "fused" path at ≥ 128 px, which folds the
    upsampling into a stride-2 transposed convolution with a 4×4 kernel built from the 3×3
    one, a speed-up of the same kind of map.
    """

    def __init__(self, taps: Sequence[float] = (1.0, 2.0, 1.0)):
        super().__init__()
        self.blur = Blur(taps)

    def forward(self, x: Tensor) -> Tensor:
        return self.blur(upscale2d(x))


class BlurDownsample(nn.Module):
    """:class:`Blur` followed by 2×2 average pooling: (N, C, H, W) → (N, C, H/2, W/2).

    v1's discriminator blurs, convolves and then downsamples (blur → conv → down); as in
    :class:`BlurUpsample`, the conv commutes with the blur except at the border. Not
    implemented: v1's fused stride-2 convolution at ≥ 128 px (a 4×4 kernel built from the
    3×3 one and the 2×2 box). H and W must be even.
    """

    def __init__(self, taps: Sequence[float] = (1.0, 2.0, 1.0)):
        super().__init__()
        self.blur = Blur(taps)

    def forward(self, x: Tensor) -> Tensor:
        return downscale2d(self.blur(x))
