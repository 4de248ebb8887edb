"""k-NN manifold metrics: precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020).

Each sample's neighbourhood is the ball reaching its k-th nearest neighbour within its own set (itself
excluded). Distances are computed in row batches, so 10k × 10k or 50k × 50k comparisons need only a
bounded block of memory at a time. Squared distances are compared, which orders points like Euclidean ones.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import torch

from gancli.metrics._arrays import as_float64_matrix

# Elements of one float64 distance block (64 MiB); a few temporaries of this size exist at once.
DEFAULT_BLOCK_ELEMENTS = 1 << 23


class PrecisionRecall(NamedTuple):
    precision: float
    recall: float
    k: int


class DensityCoverage(NamedTuple):
    density: float
    coverage: float
    k: int


def precision_recall(real, fake, *, k: int = 3, block_elements: int = DEFAULT_BLOCK_ELEMENTS) -> PrecisionRecall:
    """Precision: share of fake samples inside the real manifold; recall: share of real inside the fake one.

    Membership is `distance <= radius`, as in the reference code (kynkaat, StyleGAN2-ADA, torch-fidelity).
    """
    real_t, fake_t = _as_tensors(real, fake)
    real_radii = knn_squared_radii(real_t, k, block_elements)
    fake_radii = knn_squared_radii(fake_t, k, block_elements)
    fakes_inside = _count_over_blocks(fake_t, real_t, block_elements, lambda d, rows: (d <= real_radii).any(dim=1))
    reals_inside = _count_over_blocks(real_t, fake_t, block_elements, lambda d, rows: (d <= fake_radii).any(dim=1))
    return PrecisionRecall(fakes_inside / fake_t.shape[0], reals_inside / real_t.shape[0], k)


def density_coverage(real, fake, *, k: int = 5, block_elements: int = DEFAULT_BLOCK_ELEMENTS) -> DensityCoverage:
    """Density: mean number of real balls holding each fake sample, divided by k; coverage: share of real
    balls holding at least one fake sample. Only real-side balls are used, so outliers among the fakes do
    not inflate them. Membership is strict `distance < radius`, as in Naeem et al.'s reference code (prdc).

    For two independent samples of one distribution with N = M large, E[density] = 1 and
    E[coverage] = 1 − 2^−k (0.969 for k = 5), whatever the dimension (Naeem et al. 2020).
    """
    real_t, fake_t = _as_tensors(real, fake)
    real_radii = knn_squared_radii(real_t, k, block_elements)
    memberships = _count_over_blocks(fake_t, real_t, block_elements, lambda d, rows: d < real_radii)
    covered = _count_over_blocks(
        real_t, fake_t, block_elements, lambda d, rows: d.min(dim=1).values < real_radii[rows]
    )
    return DensityCoverage(memberships / (k * fake_t.shape[0]), covered / real_t.shape[0], k)


def knn_squared_radii(points: torch.Tensor, k: int, block_elements: int = DEFAULT_BLOCK_ELEMENTS) -> torch.Tensor:
    """Squared distance from each point to its k-th nearest other point of the same set."""
    if not 1 <= k < points.shape[0]:
        raise ValueError(f"k must be between 1 and {points.shape[0] - 1} for {points.shape[0]} points, got {k}")
    radii = torch.empty(points.shape[0], dtype=points.dtype)
    for rows in _row_blocks(points.shape[0], points.shape[0], block_elements):
        distances = squared_distances(points[rows], points)
        # Column k (0-based) after sorting: column 0 is the point itself at distance 0.
        radii[rows] = torch.kthvalue(distances, k + 1, dim=1).values
    return radii


def squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    products = a @ b.T
    return ((a * a).sum(dim=1, keepdim=True) - 2.0 * products + (b * b).sum(dim=1)).clamp_min_(0.0)


def _count_over_blocks(queries, references, block_elements, hits: Callable) -> int:
    """Sum of `hits(distances, rows)` over blocks of query rows against all references."""
    total = 0
    for rows in _row_blocks(queries.shape[0], references.shape[0], block_elements):
        total += int(hits(squared_distances(queries[rows], references), rows).sum())
    return total


def _row_blocks(num_rows: int, num_columns: int, block_elements: int):
    step = max(1, block_elements // max(1, num_columns))
    for start in range(0, num_rows, step):
        yield slice(start, min(start + step, num_rows))


def _as_tensors(real, fake) -> tuple[torch.Tensor, torch.Tensor]:
    real_t = torch.from_numpy(as_float64_matrix(real))
    fake_t = torch.from_numpy(as_float64_matrix(fake))
    if real_t.shape[1] != fake_t.shape[1]:
        raise ValueError(f"feature dimensions differ: {real_t.shape[1]} vs {fake_t.shape[1]}")
    return real_t, fake_t
