"""Mode coverage on 2-D mixtures of Gaussians (VEEGAN / PacGAN protocol).

* A sample is *high quality* when its distance to the nearest mode mean is below
  ``threshold_std`` standard deviations (3 in 2-D): ‖x − μ‖ / σ < 3. For true data
  this happens with probability 1 − exp(−9/2) ≈ 98.89% (the χ² law with 2 degrees
  of freedom), so a perfect generator scores about that, not 100%.
* A mode is *captured* when at least ``min_count`` high-quality samples are nearest
  to it; VEEGAN and PacGAN use one sample.
* Reverse KL is KL(p̂ ‖ U) in nats, p̂ the histogram of high-quality samples over
  the modes and U uniform over all modes (0·log 0 = 0): 0 for perfect coverage,
  log K for total collapse onto one mode. PacGAN's released code does not compute
  it; this is the definition gancli uses, stated with every result.

The published protocol draws 2500 samples and averages over several runs.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence, Union

import torch
from torch import Tensor


@dataclass(frozen=True)
class ModeCoverage:
    modes_captured: int
    total_modes: int
    high_quality_share: float
    # nan when no sample is high quality: the histogram is then undefined
    reverse_kl: float
    counts: tuple[int, ...]  # high-quality samples nearest to each mode
    num_samples: int
    threshold_std: float
    min_count: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def mode_coverage(
    samples: Tensor,
    centers: Union[Tensor, Sequence[Sequence[float]]],
    std: float,
    *,
    threshold_std: float = 3.0,
    min_count: int = 1,
) -> ModeCoverage:
    """Modes captured, high-quality share and reverse KL of ``samples`` (N, 2) against the mixture."""
    samples = torch.as_tensor(samples).detach().to("cpu", torch.float64)
    centers = torch.as_tensor(centers).detach().to("cpu", torch.float64)
    if samples.dim() != 2 or centers.dim() != 2 or samples.shape[1] != centers.shape[1]:
        raise ValueError(
            f"samples (N, d) and centers (K, d) must agree, got {tuple(samples.shape)} and {tuple(centers.shape)}"
        )
    if samples.shape[0] == 0:
        raise ValueError("mode coverage needs at least one sample")
    if std <= 0:
        raise ValueError(f"std must be positive, got {std}")
    if min_count < 1:
        raise ValueError(f"min_count must be at least 1, got {min_count}")

    num_modes = centers.shape[0]
    distances = torch.cdist(samples, centers)
    nearest_distance, nearest_mode = distances.min(dim=1)
    high_quality = nearest_distance < threshold_std * std
    counts = torch.bincount(nearest_mode[high_quality], minlength=num_modes)

    num_high_quality = int(high_quality.sum())
    if num_high_quality == 0:
        reverse_kl = math.nan
    else:
        p = counts.double() / num_high_quality
        present = p > 0
        reverse_kl = float((p[present] * (p[present] * num_modes).log()).sum())

    return ModeCoverage(
        modes_captured=int((counts >= min_count).sum()),
        total_modes=num_modes,
        high_quality_share=num_high_quality / samples.shape[0],
        reverse_kl=reverse_kl,
        counts=tuple(int(c) for c in counts),
        num_samples=int(samples.shape[0]),
        threshold_std=threshold_std,
        min_count=min_count,
    )
