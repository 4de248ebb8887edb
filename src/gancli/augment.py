"""Differentiable augmentation of the images a discriminator sees: DiffAugment and ADA.

Both are pure torch (the same code on every device) and differentiable with respect to the
images, twice over (an R1 penalty through an augmentation differentiates its input gradient):
D is shown augmented reals *and* fakes, so G's gradient passes through the augmentation and G
is never pushed to produce augmented images (Zhao et al. 2020 §3; Karras et al. 2020 §2).

* :func:`diffaugment` — Zhao, Liu, Lin, Zhu & Han 2020 ("Differentiable Augmentation for
  Data-Efficient GAN Training"), as mit-han-lab/data-efficient-gans ``DiffAugment_pytorch.py``:
  policy "color" (brightness + U(−0.5, 0.5), saturation × U(0, 2) around the channel mean,
  contrast × U(0.5, 1.5) around the image mean), "translation" (integer shifts of up to 1/8 of
  the size, zero fill) and "cutout" (a square of half the size, zeroed), each on every image.
* :func:`ada` — Karras, Aittala, Hellsten, Laine, Lehtinen & Aila 2020 ("Training Generative
  Adversarial Networks with Limited Data"), as NVlabs/stylegan2-ada-pytorch
  ``training/augment.py`` (``AugmentPipe``) with its distributions and defaults: pixel
  blitting (x-flip, 90° rotations, integer translation of up to 1/8 with reflection),
  general geometric transforms (isotropic scaling lognormal σ 0.2·log 2, rotation uniform
  over the full circle split in a pre- and a post-rotation, anisotropic scaling, fractional
  translation N(0, 0.125)), composed into one matrix and executed once: reflect padding, ×2
  upsampling with the sym6 wavelet filter, bilinear ``grid_sample``, ×2 downsampling; colour
  transforms (brightness N(0, 0.2), contrast lognormal σ 0.5·log 2, luma flip, hue rotation
  about the luma axis, saturation lognormal σ log 2) composed into one 4×4 matrix. Every
  transform is applied to each image independently with probability ``p``. Pipelines:
  "blit", "geom", "color", "bg", "bgc" (the paper's default). Not implemented: the "f"
  (image-space filtering) and "n"/"c" (noise, cutout) groups of ``bgcfnc``.
* :class:`AdaController` — the ADA heuristic: r_t = E[sign(D(x_real))] over ``interval``
  (4) steps; p ← max(0, p + sign(r_t − target)·batch·interval / (speed_kimg·1000)), target 0.6,
  so p can move from 0 to 1 in 500k images. Its state (p and the running sum and count of
  signs) round-trips exactly through a dict of tensors.

Randomness: every draw goes through ``draws``, an object with the methods of
:class:`gancli.objective.Step` — ``rand(*shape, n=)``, ``randn(*shape, n=)``,
``randint(high, *shape, n=)`` — so that an objective can pass its Step and get the
trainer's counter-based draws (the same numbers however a batch is split over processes or
micro-batches, and again after a resume). Without one, :class:`TorchDraws` draws from a
``torch.Generator`` or torch's global generator. At p = 0 (and for examples a transform
skips) the output is the input exactly, not a resampled copy of it.
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from gancli.augment_geometry import (
    eye, resample, rotate2d, rotate3d, scale2d, scale3d, translate2d, translate3d,
)

__all__ = ["ADA_PIPELINES", "AdaController", "DIFFAUGMENT_POLICY", "Draws", "TorchDraws", "ada", "diffaugment"]


class Draws(Protocol):
    def rand(self, *shape: int, n: Optional[int] = None) -> Tensor: ...

    def randn(self, *shape: int, n: Optional[int] = None) -> Tensor: ...

    def randint(self, high: int, *shape: int, n: Optional[int] = None) -> Tensor: ...


class TorchDraws:
    """Step-like draws of n examples from a ``torch.Generator`` (or torch's global generator) on ``device``."""

    def __init__(self, device: torch.device | str = "cpu", generator: Optional[torch.Generator] = None) -> None:
        self.device = torch.device(device)
        self.generator = generator

    def rand(self, *shape: int, n: Optional[int] = None) -> Tensor:
        return torch.rand((n, *shape), generator=self.generator, device=self.device)

    def randn(self, *shape: int, n: Optional[int] = None) -> Tensor:
        return torch.randn((n, *shape), generator=self.generator, device=self.device)

    def randint(self, high: int, *shape: int, n: Optional[int] = None) -> Tensor:
        return torch.randint(0, high, (n, *shape), generator=self.generator, device=self.device)


def _draws(draws: Optional[Draws], x: Tensor) -> Draws:
    return draws if draws is not None else TorchDraws(x.device)


def _where(mask: Tensor, augmented: Tensor, x: Tensor) -> Tensor:
    """Per example: the augmented image where ``mask`` (N,) is true, the input itself elsewhere."""
    return torch.where(mask.reshape(-1, *([1] * (x.dim() - 1))), augmented, x)


# ------------------------------------------------------------------------------------------ DiffAugment

DIFFAUGMENT_POLICY = "color,translation,cutout"


def diffaugment(x: Tensor, policy: str = DIFFAUGMENT_POLICY, *, p: float = 1.0, draws: Optional[Draws] = None,
                translation_ratio: float = 0.125, cutout_ratio: float = 0.5) -> Tensor:
    """DiffAugment of (N, C, H, W) images: the policy's transforms in order ("color", "translation", "cutout").

    The reference applies every transform to every image (``p = 1``); with ``p`` < 1 each
    transform is applied to each image with probability p (p = 0: the identity). Draws per
    transform: brightness, saturation, contrast one U[0, 1) each per image; translation two
    integers per image; cutout two integers per image; then one U[0, 1) per image and
    transform for the probability when p < 1.
    """
    if x.dim() != 4:
        raise ValueError(f"diffaugment expects (N, C, H, W) images, got {tuple(x.shape)}")
    names = [name.strip() for name in policy.split(",") if name.strip()]
    unknown = [name for name in names if name not in ("color", "translation", "cutout")]
    if unknown:
        raise ValueError(f"unknown DiffAugment policy {unknown[0]!r}; use color, translation and/or cutout")
    if p <= 0 or not names:
        return x
    d = _draws(draws, x)
    n = x.shape[0]

    def maybe(augmented: Tensor, original: Tensor) -> Tensor:
        return augmented if p >= 1 else _where(d.rand(n=n).to(x.device) < p, augmented, original)

    for name in names:
        if name == "color":
            u = d.rand(1, 1, 1, n=n).to(x.device, x.dtype)
            x = maybe(x + (u - 0.5), x)
            u = d.rand(1, 1, 1, n=n).to(x.device, x.dtype)
            mean = x.mean(dim=1, keepdim=True)
            x = maybe((x - mean) * (u * 2) + mean, x)
            u = d.rand(1, 1, 1, n=n).to(x.device, x.dtype)
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = maybe((x - mean) * (u + 0.5) + mean, x)
        elif name == "translation":
            x = maybe(_translate(x, d, translation_ratio), x)
        else:
            x = maybe(_cutout(x, d, cutout_ratio), x)
    return x


def _translate(x: Tensor, d: Draws, ratio: float) -> Tensor:
    """DiffAugment ``rand_translation``: shift rows and columns by integers in [−s, s], s = ⌊size·ratio + ½⌋, zero fill."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = (d.randint(2 * sh + 1, 1, 1, n=n) - sh).to(x.device)
    tx = (d.randint(2 * sw + 1, 1, 1, n=n) - sw).to(x.device)
    rows = torch.arange(h, device=x.device).reshape(1, h, 1)
    cols = torch.arange(w, device=x.device).reshape(1, 1, w)
    # index into the image padded by one zero pixel: positions shifted out of the image read the zero border
    src_y = torch.clamp(rows + ty + 1, 0, h + 1).expand(n, h, w)
    src_x = torch.clamp(cols + tx + 1, 0, w + 1).expand(n, h, w)
    padded = F.pad(x, (1, 1, 1, 1))
    batch = torch.arange(n, device=x.device).reshape(n, 1, 1).expand(n, h, w)
    return padded.permute(0, 2, 3, 1)[batch, src_y, src_x].permute(0, 3, 1, 2)


def _cutout(x: Tensor, d: Draws, ratio: float) -> Tensor:
    """DiffAugment ``rand_cutout``: zero a ⌊size·ratio + ½⌋ square centred at a random pixel (clipped at the border)."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = d.randint(h + (1 - ch % 2), 1, 1, n=n).to(x.device)
    ox = d.randint(w + (1 - cw % 2), 1, 1, n=n).to(x.device)
    rows = torch.arange(h, device=x.device).reshape(1, h, 1)
    cols = torch.arange(w, device=x.device).reshape(1, 1, w)
    y0, x0 = oy - ch // 2, ox - cw // 2
    inside = (rows >= y0) & (rows < y0 + ch) & (cols >= x0) & (cols < x0 + cw)
    return x * (~inside).to(x.dtype).unsqueeze(1)


# ------------------------------------------------------------------------------------------ ADA

# which transforms each pipeline enables (probability multipliers of 1), as stylegan2-ada-pytorch train.py's augpipe_specs
_BLIT = ("xflip", "rotate90", "xint")
_GEOM = ("scale", "rotate", "aniso", "xfrac")
_COLOR = ("brightness", "contrast", "lumaflip", "hue", "saturation")
ADA_PIPELINES: dict[str, tuple[str, ...]] = {
    "blit": _BLIT, "geom": _GEOM, "color": _COLOR, "bg": _BLIT + _GEOM, "bgc": _BLIT + _GEOM + _COLOR,
}

# AugmentPipe's defaults
XINT_MAX, SCALE_STD, ROTATE_MAX, ANISO_STD, XFRAC_STD = 0.125, 0.2, 1.0, 0.2, 0.125
BRIGHTNESS_STD, CONTRAST_STD, HUE_MAX, SATURATION_STD = 0.2, 0.5, 1.0, 1.0

def ada(x: Tensor, p: float, *, pipeline: str = "bgc", draws: Optional[Draws] = None) -> Tensor:
    """ADA's augmentation of (N, C, H, W) images in [-1, 1] (C = 1 or 3; hue and saturation need 3) at probability p.

    Draw order per enabled transform (AugmentPipe's): the parameter, then one U[0, 1) per image
    for "applied with probability p" (two parameters' draws for the rotations).
    """
    if x.dim() != 4:
        raise ValueError(f"ada expects (N, C, H, W) images, got {tuple(x.shape)}")
    if pipeline not in ADA_PIPELINES:
        raise ValueError(f"unknown ADA pipeline {pipeline!r}; use one of {', '.join(ADA_PIPELINES)}")
    if x.shape[1] not in (1, 3):
        raise ValueError(f"ada augments grey (1 channel) or RGB (3 channel) images, got {x.shape[1]} channels")
    if p <= 0:
        return x
    enabled = set(ADA_PIPELINES[pipeline])
    d = _draws(draws, x)
    n, channels, h, w = x.shape
    device = x.device

    def applied(shape=()) -> Tensor:
        return (d.rand(*shape, n=n).to(device) < p)

    # ---------------------------------------------------------------- geometry: G_inv maps output pixels to input ones
    g_inv = eye(n, 3, device)
    if "xflip" in enabled:
        i = torch.floor(d.rand(n=n).to(device) * 2)
        i = torch.where(applied(), i, torch.zeros_like(i))
        g_inv = g_inv @ scale2d(1 / (1 - 2 * i), torch.ones_like(i))
    if "rotate90" in enabled:
        i = torch.floor(d.rand(n=n).to(device) * 4)
        i = torch.where(applied(), i, torch.zeros_like(i))
        g_inv = g_inv @ rotate2d(math.pi / 2 * i)  # rotate2d_inv(−π/2·i)
    if "xint" in enabled:
        t = (d.rand(2, n=n).to(device) * 2 - 1) * XINT_MAX
        t = torch.where(applied((1,)), t, torch.zeros_like(t))
        g_inv = g_inv @ translate2d(-torch.round(t[:, 0] * w), -torch.round(t[:, 1] * h))
    if "scale" in enabled:
        s = torch.exp2(d.randn(n=n).to(device) * SCALE_STD)
        s = torch.where(applied(), s, torch.ones_like(s))
        g_inv = g_inv @ scale2d(1 / s, 1 / s)
    p_rot = 1 - math.sqrt(min(max(1 - p, 0.0), 1.0))  # P(pre or post rotation) = p
    if "rotate" in enabled:
        theta = (d.rand(n=n).to(device) * 2 - 1) * math.pi * ROTATE_MAX
        theta = torch.where(d.rand(n=n).to(device) < p_rot, theta, torch.zeros_like(theta))
        g_inv = g_inv @ rotate2d(theta)  # rotate2d_inv(−θ), before the anisotropic scaling
    if "aniso" in enabled:
        s = torch.exp2(d.randn(n=n).to(device) * ANISO_STD)
        s = torch.where(applied(), s, torch.ones_like(s))
        g_inv = g_inv @ scale2d(1 / s, s)
    if "rotate" in enabled:
        theta = (d.rand(n=n).to(device) * 2 - 1) * math.pi * ROTATE_MAX
        theta = torch.where(d.rand(n=n).to(device) < p_rot, theta, torch.zeros_like(theta))
        g_inv = g_inv @ rotate2d(theta)  # after the anisotropic scaling
    if "xfrac" in enabled:
        t = d.randn(2, n=n).to(device) * XFRAC_STD
        t = torch.where(applied((1,)), t, torch.zeros_like(t))
        g_inv = g_inv @ translate2d(-t[:, 0] * w, -t[:, 1] * h)
    if enabled & set(_BLIT + _GEOM):
        moved = (g_inv - torch.eye(3, device=device)).abs().flatten(1).amax(dim=1) > 0
        if bool(moved.any()):
            x = _where(moved, resample(x, g_inv), x)

    # ---------------------------------------------------------------- colour: C maps input colours to output ones
    c_mat = eye(n, 4, device)
    luma = torch.tensor([1.0, 1.0, 1.0, 0.0], device=device) / math.sqrt(3)
    luma_outer = torch.outer(luma, luma)
    if "brightness" in enabled:
        b = d.randn(n=n).to(device) * BRIGHTNESS_STD
        b = torch.where(applied(), b, torch.zeros_like(b))
        c_mat = translate3d(b) @ c_mat
    if "contrast" in enabled:
        c = torch.exp2(d.randn(n=n).to(device) * CONTRAST_STD)
        c = torch.where(applied(), c, torch.ones_like(c))
        c_mat = scale3d(c) @ c_mat
    if "lumaflip" in enabled:
        i = torch.floor(d.rand(1, 1, n=n).to(device) * 2)
        i = torch.where(applied((1, 1)), i, torch.zeros_like(i))
        c_mat = (torch.eye(4, device=device) - 2 * luma_outer * i) @ c_mat  # Householder reflection of the luma axis
    if "hue" in enabled and channels > 1:
        theta = (d.rand(n=n).to(device) * 2 - 1) * math.pi * HUE_MAX
        theta = torch.where(applied(), theta, torch.zeros_like(theta))
        c_mat = rotate3d(luma, theta) @ c_mat
    if "saturation" in enabled and channels > 1:
        s = torch.exp2(d.randn(1, 1, n=n).to(device) * SATURATION_STD)
        s = torch.where(applied((1, 1)), s, torch.ones_like(s))
        c_mat = (luma_outer + (torch.eye(4, device=device) - luma_outer) * s) @ c_mat
    if enabled & set(_COLOR):
        changed = (c_mat - torch.eye(4, device=device)).abs().flatten(1).amax(dim=1) > 0
        if bool(changed.any()):
            flat = x.reshape(n, channels, h * w)
            c_mat = c_mat.to(x.dtype)
            if channels == 3:
                out = c_mat[:, :3, :3] @ flat + c_mat[:, :3, 3:]
            else:  # grey: the mean of the RGB rows, applied to the one channel
                mean = c_mat[:, :3, :].mean(dim=1, keepdim=True)
                out = flat * mean[:, :, :3].sum(dim=2, keepdim=True) + mean[:, :, 3:]
            x = _where(changed, out.reshape(n, channels, h, w), x)
    return x


class AdaController:
    """ADA's p: r_t = mean sign of D's outputs on reals over ``interval`` steps; p moves towards r_t = ``target``.

    Feed it with :meth:`observe` (D's raw outputs on real images, each pass that scores reals)
    and call :meth:`end_step` after every training iteration with the number of iterations done
    and the global batch: every ``interval`` iterations p ← max(0, p + sign(r_t − target) ·
    batch · interval / (speed_kimg · 1000)) and the statistic restarts (stylegan2-ada
    ``training_loop.py``: ada_interval 4, ada_kimg 500, target 0.6; as there p is not capped at 1,
    where every transform is applied anyway). With several processes pass ``reduce_sum`` (sums a
    tensor over them) so that every process computes the same r_t and so the same p. An interval
    without observations leaves p as it is.
    """

    def __init__(self, *, target: float = 0.6, interval: int = 4, speed_kimg: float = 500.0, p: float = 0.0) -> None:
        if interval < 1 or speed_kimg <= 0 or p < 0:
            raise ValueError("AdaController needs interval ≥ 1, speed_kimg > 0 and p ≥ 0")
        self.target = float(target)
        self.interval = int(interval)
        self.speed_kimg = float(speed_kimg)
        self.p = float(p)
        self._sum = torch.zeros((), dtype=torch.float64)
        self._count = torch.zeros((), dtype=torch.float64)

    @torch.no_grad()
    def observe(self, real_logits: Tensor) -> None:
        signs = real_logits.detach().flatten().sign().to(torch.float64)
        self._sum = self._sum.to(signs.device) + signs.sum()
        self._count = self._count.to(signs.device) + signs.numel()

    @property
    def statistic(self) -> float:
        """r_t so far in this interval (nan before any observation)."""
        count = float(self._count)
        return float(self._sum) / count if count else float("nan")

    def end_step(self, steps_done: int, batch_size: int,
                 reduce_sum: Optional[Callable[[Tensor], Tensor]] = None) -> float:
        """After iteration ``steps_done − 1``: adjust p when ``steps_done`` is a multiple of the interval; returns p."""
        if steps_done % self.interval:
            return self.p
        totals = torch.stack([self._sum, self._count])
        if reduce_sum is not None:
            totals = reduce_sum(totals)
        total, count = (float(v) for v in totals.cpu())
        self._sum = torch.zeros_like(self._sum)
        self._count = torch.zeros_like(self._count)
        if count > 0:
            r_t = total / count
            sign = (r_t > self.target) - (r_t < self.target)
            self.p = max(0.0, self.p + sign * batch_size * self.interval / (self.speed_kimg * 1000.0))
        return self.p

    def state_tensors(self) -> dict[str, Tensor]:
        return {"p": torch.tensor(self.p, dtype=torch.float64), "sign_sum": self._sum.detach().cpu().clone(),
                "sign_count": self._count.detach().cpu().clone()}

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None:
        self.p = float(tensors["p"].double())
        self._sum = tensors["sign_sum"].double().clone()
        self._count = tensors["sign_count"].double().clone()
