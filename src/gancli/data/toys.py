"""2-D toy distributions for mode-collapse experiments.

``ring8`` and ``grid25`` follow the PacGAN / VEEGAN settings (PacGAN's config.py):
8 Gaussians at (cos 2πk/8, sin 2πk/8) with std 0.01, and 25 Gaussians on
{−4, −2, 0, 2, 4}² with std 0.05. Ring angles use 2πk/8, not ``linspace(0, 2π, 8)``,
which makes the first and last means coincide (7 distinct modes) in several
public implementations. ``spiral`` and ``moons`` have no modes to count.

Every sampler takes a ``torch.Generator`` and draws only from it, so a seed fixes
the points exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import Tensor

from gancli.data.images import TensorData
from gancli.data.spec import DataSpec

TOY_POINTS = 100_000  # points drawn once from a toy distribution as a data source

Sampler = Callable[[int, Optional[torch.Generator]], Tensor]


# eq=False: comparing tensor fields elementwise has no single truth value
@dataclass(frozen=True, eq=False)
class ToySpec:
    name: str
    sample: Sampler
    centers: Optional[Tensor]  # (K, 2) mode means; None when the data has no discrete modes
    std: float  # per-coordinate std of each mode (mixtures) or of the added noise (spiral, moons)
    description: str = ""

    @property
    def num_modes(self) -> int:
        return 0 if self.centers is None else int(self.centers.shape[0])


def _mixture_sampler(centers: Tensor, std: float) -> Sampler:
    def sample(n: int, generator: Optional[torch.Generator] = None) -> Tensor:
        component = torch.randint(len(centers), (n,), generator=generator)
        noise = torch.randn(n, 2, generator=generator) * std
        return centers[component] + noise

    return sample


def _ring_centers(num_modes: int = 8, radius: float = 1.0) -> Tensor:
    angles = 2.0 * math.pi * torch.arange(num_modes, dtype=torch.float64) / num_modes
    return (radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float()


def _grid_centers(values: tuple[float, ...] = (-4.0, -2.0, 0.0, 2.0, 4.0)) -> Tensor:
    axis = torch.tensor(values, dtype=torch.float32)
    xs, ys = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten()], dim=1)


SPIRAL_NOISE = 0.05
SPIRAL_TURNS = 1.5


def sample_spiral(n: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """Two interleaved Archimedean arms, radius up to 3, 1.5 turns each."""
    # sqrt spreads points evenly along the arm's length rather than its angle
    t = torch.rand(n, generator=generator).sqrt()
    angle = t * SPIRAL_TURNS * 2.0 * math.pi
    radius = 3.0 * t
    arm = torch.randint(2, (n,), generator=generator)
    angle = angle + math.pi * arm
    points = torch.stack([radius * angle.cos(), radius * angle.sin()], dim=1)
    return points + torch.randn(n, 2, generator=generator) * SPIRAL_NOISE


MOONS_NOISE = 0.05


def sample_moons(n: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """Two interleaving half circles (the geometry of scikit-learn's make_moons)."""
    t = torch.rand(n, generator=generator) * math.pi
    lower = torch.randint(2, (n,), generator=generator).bool()
    x = torch.where(lower, 1.0 - t.cos(), t.cos())
    y = torch.where(lower, 0.5 - t.sin(), t.sin())
    points = torch.stack([x, y], dim=1)
    return points + torch.randn(n, 2, generator=generator) * MOONS_NOISE


RING8_STD = 0.01
GRID25_STD = 0.05

TOYS: dict[str, ToySpec] = {
    "ring8": ToySpec(
        "ring8",
        _mixture_sampler(_ring_centers(), RING8_STD),
        _ring_centers(),
        RING8_STD,
        "8 Gaussians on the unit circle, std 0.01 (PacGAN/VEEGAN)",
    ),
    "grid25": ToySpec(
        "grid25",
        _mixture_sampler(_grid_centers(), GRID25_STD),
        _grid_centers(),
        GRID25_STD,
        "25 Gaussians on {-4,-2,0,2,4}², std 0.05 (PacGAN/VEEGAN)",
    ),
    "spiral": ToySpec("spiral", sample_spiral, None, SPIRAL_NOISE, "two-arm spiral, radius 3"),
    "moons": ToySpec("moons", sample_moons, None, MOONS_NOISE, "two interleaving half circles"),
}


def sample_toy(name: str, n: int, seed: int = 0) -> Tensor:
    """n float32 points of shape (n, 2) from the named toy, fixed by ``seed``."""
    from gancli.errors import GancliError

    try:
        spec = TOYS[name]
    except KeyError:
        raise GancliError(f"unknown toy dataset {name!r}; choose one of: {', '.join(TOYS)}") from None
    generator = torch.Generator().manual_seed(seed)
    return spec.sample(n, generator)


def seed_for_split(split: str) -> int:
    return {"train": 0, "test": 1}[split]


def toy_data(name: str, seed: int) -> TensorData:
    """The toy ``name`` as a dataset: TOY_POINTS points drawn once with ``seed`` (seed_for_split of the split)."""
    g = torch.Generator().manual_seed(10_007 + seed)
    points = TOYS[name].sample(TOY_POINTS, g).float()
    return TensorData(DataSpec(kind="points", dim=points.shape[1], name=name), points)
