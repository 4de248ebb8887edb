"""Progressive growing (Karras et al. 2018): which resolution a network trains at, and its fade-in α.

Training starts at ``start_resolution`` and doubles up to ``target_resolution``. The
first level trains for one phase of ``kimg_per_phase`` thousand images; every later level
first fades its new block in (α rising linearly from 0 to 1 over one phase) and then
stabilises for one phase (α = 1). The state is a pure function of the images seen, so a
checkpoint's images-seen count is enough to rebuild the network at its phase and to
continue a fade-in exactly. Families that grow (progan, stylegan with ``grow = true``)
share this schedule.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Optional


@dataclass(frozen=True)
class GrowthState:
    level: int  # 0 at start_resolution, +1 per doubling
    resolution: int
    alpha: float  # weight of the newest block: rises 0 → 1 during its fade-in, then 1
    fading: bool

    def describe(self) -> str:
        what = f"fading in, α = {self.alpha:.3f}" if self.fading else "stabilising"
        return f"{self.resolution}×{self.resolution} ({what})"


@dataclass(frozen=True)
class GrowthSchedule:
    target_resolution: int
    kimg_per_phase: float = 800.0  # the paper: 800k images of fade-in, then 800k of stabilisation
    start_resolution: int = 4
    batch_sizes: Mapping[int, int] = field(default_factory=dict)  # global batch per resolution (optional)

    def __post_init__(self) -> None:
        for name in ("start_resolution", "target_resolution"):
            value = getattr(self, name)
            if value < 4 or value & (value - 1):
                raise ValueError(f"{name} must be a power of two ≥ 4, got {value}")
        if self.start_resolution > self.target_resolution:
            raise ValueError("start_resolution must not exceed target_resolution")
        if self.kimg_per_phase <= 0:
            raise ValueError("kimg_per_phase must be positive")

    @property
    def levels(self) -> int:
        return int(math.log2(self.target_resolution // self.start_resolution))

    def state(self, images_seen: int) -> GrowthState:
        phases = images_seen / (self.kimg_per_phase * 1000.0)
        if phases < 1.0 or self.levels == 0:
            return GrowthState(0, self.start_resolution, 1.0, False)
        # phase 2L − 1 fades level L in, phase 2L stabilises it
        level = min(self.levels, int((phases + 1.0) // 2.0))
        fade_start = 2.0 * level - 1.0
        alpha = min(1.0, max(0.0, phases - fade_start))
        fading = phases < fade_start + 1.0
        return GrowthState(level, self.start_resolution * 2**level, alpha if fading else 1.0, fading)

    def batch_size(self, images_seen: int) -> Optional[int]:
        """The global batch at this point of the schedule, or None when no per-resolution batch is set."""
        return self.batch_sizes.get(self.state(images_seen).resolution) if self.batch_sizes else None

    def images_until_full_resolution(self) -> int:
        """Images shown before the target resolution is reached and stabilised."""
        return int(round((2 * self.levels + 1) * self.kimg_per_phase * 1000.0))


def feature_maps(resolution: int, fmap_base: int, fmap_max: int, fmap_decay: float = 1.0) -> int:
    """Channels of a growing network's layers at ``resolution``: nf(log2(resolution) − 1).

    ``nf(stage) = min(int(fmap_base / 2^(stage · fmap_decay)), fmap_max)`` as in
    tkarras/progressive_growing_of_gans and NVlabs/stylegan ``networks*.py``; 0 when fmap_base
    is too small for the resolution (a family's check_data should refuse that). With fmap_decay 1 it is min(2·fmap_base / resolution, fmap_max). ``resolution=2`` gives
    nf(0), the width of D's hidden dense layer (and ProGAN's default latent size).
    """
    stage = int(math.log2(resolution)) - 1
    return min(int(fmap_base / 2.0 ** (stage * fmap_decay)), fmap_max)


def reals_at(real, resolution: int, alpha=None, *, full_size: bool = False):
    """The real batch as a network at ``resolution`` sees it: average-pooled to that resolution
    and, during a fade-in (``alpha`` given, a float or a 0-d tensor), blended from its 2× coarser
    version (pooled once more, then upsampled) at α = 0 to itself at α = 1 — the reference's
    ``process_reals`` (FadeLOD). ``full_size``: nearest-upsampled back to the batch's own size,
    for networks that take and give full-resolution images (NVlabs/stylegan's growing mode)."""
    from gancli.nn import downscale2d, fade_in, upscale2d

    factor = real.shape[-1] // resolution
    x = downscale2d(real, factor) if factor > 1 else real
    if alpha is not None:
        x = fade_in(alpha.to(x.dtype) if hasattr(alpha, "to") else alpha, upscale2d(downscale2d(x)), x)
    return upscale2d(x, factor) if full_size and factor > 1 else x
