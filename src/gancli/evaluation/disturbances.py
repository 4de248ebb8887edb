"""The image disturbances of the FID paper's experiment (Heusel et al. 2017, appendix), on uint8 batches.

A disturbance takes a level in [0, 1]: 0 is the clean image, 1 the strongest setting of the paper, and
levels in between scale the paper's parameter linearly. The random draws (noise, pixel choices, rectangle
centres, which images are replaced) are made once per seed and shared by every level, so a higher level
damages the same images further instead of damaging them differently.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from gancli.errors import GancliError


@dataclass(frozen=True)
class Disturbance:
    name: str
    parameter: str  # what the level scales
    strongest: float  # the parameter at level 1: the paper's strongest setting
    description: str
    apply: Callable[..., Tensor]  # (float pixels 0..255 NCHW, parameter, generator, foreign) -> float pixels

    def parameter_at(self, level: float) -> float:
        return self.strongest * level


def _noise(pixels: Tensor, alpha: float, generator: torch.Generator, foreign) -> Tensor:
    noise = (127.5 + 42.5 * torch.randn(pixels.shape, generator=generator)).clamp_(0.0, 255.0)
    return (1.0 - alpha) * pixels + alpha * noise


def _blur(pixels: Tensor, sigma_at_64: float, generator: torch.Generator, foreign) -> Tensor:
    side = pixels.shape[-1]
    sigma = sigma_at_64 * side / 64.0
    if sigma <= 0:
        return pixels
    radius = min(int(math.ceil(3.0 * sigma)), side - 1, pixels.shape[-2] - 1)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = pixels.shape[1]
    rows = kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    cols = kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    padded = F.pad(pixels, (0, 0, radius, radius), mode="reflect")
    blurred = F.conv2d(padded, rows, groups=channels)
    padded = F.pad(blurred, (radius, radius, 0, 0), mode="reflect")
    return F.conv2d(padded, cols, groups=channels)


SWIRL_RADIUS_SHARE = 25.0 / 64.0  # the paper's ρ = 25 pixels on 64-pixel images


def _swirl(pixels: Tensor, strength: float, generator: torch.Generator, foreign) -> Tensor:
    """Output pixel (x, y) takes the input at angle θ + strength · exp(−5r / (ln 2 · ρ)) around the centre
    (the paper's reverse mapping, as in scikit-image's swirl), sampled bilinearly, edges reflected."""
    height, width = pixels.shape[-2:]
    rho = SWIRL_RADIUS_SHARE * min(height, width)
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64), indexing="ij")
    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    radius = torch.hypot(xs - cx, ys - cy)
    theta = torch.atan2(ys - cy, xs - cx) + strength * torch.exp(-5.0 * radius / (math.log(2.0) * rho))
    source_x = cx + radius * torch.cos(theta)
    source_y = cy + radius * torch.sin(theta)
    grid = torch.stack([2.0 * source_x / (width - 1) - 1.0, 2.0 * source_y / (height - 1) - 1.0], dim=-1).float()
    grid = grid.unsqueeze(0).expand(pixels.shape[0], -1, -1, -1)
    return F.grid_sample(pixels, grid, mode="bilinear", padding_mode="reflection", align_corners=True)


def _salt_and_pepper(pixels: Tensor, share: float, generator: torch.Generator, foreign) -> Tensor:
    batch, _, height, width = pixels.shape
    chosen = torch.rand((batch, 1, height, width), generator=generator) < share
    white = torch.rand((batch, 1, height, width), generator=generator) < 0.5
    flipped = torch.where(white, 255.0, 0.0).expand_as(pixels)
    return torch.where(chosen.expand_as(pixels), flipped, pixels)


RECTANGLES = 5


def _rectangles(pixels: Tensor, side_share: float, generator: torch.Generator, foreign) -> Tensor:
    """Five black squares per image, side_share × the image side, around seeded centres (clipped at the edges)."""
    batch, _, height, width = pixels.shape
    centres = torch.rand((batch, RECTANGLES, 2), generator=generator) * torch.tensor([height, width])
    half_h, half_w = side_share * height / 2.0, side_share * width / 2.0
    ys = torch.arange(height, dtype=torch.float32).view(1, 1, height, 1) + 0.5
    xs = torch.arange(width, dtype=torch.float32).view(1, 1, 1, width) + 0.5
    inside_y = (ys - centres[..., 0, None, None]).abs() < half_h
    inside_x = (xs - centres[..., 1, None, None]).abs() < half_w
    covered = (inside_y & inside_x).any(dim=1, keepdim=True)
    return pixels.masked_fill(covered.expand_as(pixels), 0.0)


def _mix(pixels: Tensor, share: float, generator: torch.Generator, foreign: Optional[Tensor]) -> Tensor:
    """A share of the images replaced by foreign ones (the paper: ImageNet images among CelebA faces)."""
    if foreign is None:
        raise ValueError("the mix disturbance needs foreign images")
    batch = pixels.shape[0]
    order = torch.randperm(batch, generator=generator)
    picks = torch.randperm(len(foreign), generator=generator)
    replaced = order[: int(round(share * batch))]
    mixed = pixels.float()
    mixed[replaced] = foreign[picks[torch.arange(len(replaced)) % len(foreign)]].float()
    return mixed


DISTURBANCES: dict[str, Disturbance] = {
    "noise": Disturbance("noise", "α, the share of Gaussian noise: (1 − α)·x + α·n, n ~ N(127.5, 42.5²) clipped to 0..255",
                         0.75, "Gaussian noise mixed in", _noise),
    "blur": Disturbance("blur", "σ of the Gaussian kernel, in pixels of a 64-pixel image (scaled to the image side)",
                        4.0, "Gaussian blur", _blur),
    "swirl": Disturbance("swirl", "swirl strength (radius ρ = 25/64 of the image side, centred)", 4.0, "swirl", _swirl),
    "salt-and-pepper": Disturbance("salt-and-pepper", "share of pixels set to black or white (half each)", 0.3,
                                   "salt-and-pepper noise", _salt_and_pepper),
    "rectangles": Disturbance("rectangles", "side of each of 5 black squares, as a share of the image side", 0.75,
                              "black rectangles", _rectangles),
    "mix": Disturbance("mix", "share of the images replaced by foreign images", 0.75, "foreign images mixed in", _mix),
}


def parse_disturbances(text: str) -> list[str]:
    """"noise,blur" or "all" → names, in the order given; unknown names are one-line errors."""
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    if names == ["all"]:
        return list(DISTURBANCES)
    unknown = [name for name in names if name not in DISTURBANCES]
    if unknown or not names:
        raise GancliError(f"unknown disturbance {', '.join(unknown) or repr(text)}; known: {', '.join(DISTURBANCES)} (or all)")
    return list(dict.fromkeys(names))


def parse_levels(text: str) -> list[float]:
    """"0,0.25,0.5" → sorted unique levels in [0, 1], 0 always included (the clean reference point)."""
    try:
        levels = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise GancliError(f"--levels takes numbers between 0 and 1 separated by commas, got {text!r}") from None
    if not levels or any(not 0.0 <= level <= 1.0 for level in levels):
        raise GancliError(f"--levels takes numbers between 0 and 1 (1 = the FID paper's strongest setting), got {text!r}")
    return sorted(set(levels) | {0.0})


CHUNK = 512  # images disturbed at a time: float copies of large RGB batches would not fit in memory


def disturb(images: Tensor, name: str, level: float, *, seed: int, foreign: Optional[Tensor] = None) -> Tensor:
    """uint8 images (N, C, H, W) disturbed at `level`; level 0 returns them unchanged. Same images, name,
    seed: same draws at every level."""
    disturbance = DISTURBANCES[name]
    if level == 0.0:
        return images.clone()
    stream = seed * 1_000_003 + sorted(DISTURBANCES).index(name) * 10_007
    parameter = disturbance.parameter_at(level)
    if name == "mix":  # which images are replaced is decided over the whole batch
        generator = torch.Generator().manual_seed(stream)
        return disturbance.apply(images, parameter, generator, foreign).round_().clamp_(0.0, 255.0).to(torch.uint8)
    out = torch.empty_like(images)
    for chunk, start in enumerate(range(0, len(images), CHUNK)):
        generator = torch.Generator().manual_seed(stream + chunk)
        damaged = disturbance.apply(images[start : start + CHUNK].float(), parameter, generator, foreign)
        out[start : start + CHUNK] = damaged.round_().clamp_(0.0, 255.0).to(torch.uint8)
    return out


def pixel_damage(clean: Tensor, damaged: Tensor) -> float:
    """Mean absolute pixel change, as a share of the 0..255 range."""
    return float((clean.float() - damaged.float()).abs().mean() / 255.0)


def rendered_digits(count: int, channels: int, resolution: int, *, seed: int) -> Tensor:
    """Foreign images available everywhere: the digits 0–9 drawn with Pillow's built-in font, white on
    black, at seeded sizes, offsets and angles. The offline stand-in for the paper's ImageNet images."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    generator = np.random.default_rng(seed)
    canvas = 4 * resolution
    images = []
    for index in range(count):
        font = ImageFont.load_default(size=int(canvas * generator.uniform(0.55, 0.9)))
        image = Image.new("L", (canvas, canvas), 0)
        centre = canvas / 2 + generator.uniform(-0.1, 0.1, size=2) * canvas
        ImageDraw.Draw(image).text(tuple(centre), str(index % 10), fill=255, font=font, anchor="mm")
        image = image.rotate(float(generator.uniform(-20, 20)), resample=Image.BILINEAR)
        image = image.resize((resolution, resolution), Image.LANCZOS)
        images.append(torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()))
    return torch.stack(images).unsqueeze(1).expand(-1, channels, -1, -1).contiguous()
