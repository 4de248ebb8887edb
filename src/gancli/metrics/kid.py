"""Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD² with a cubic polynomial kernel."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from gancli.metrics._arrays import as_float64_matrix


class KernelDistance(NamedTuple):
    mean: float
    std: float
    subsets: int
    subset_size: int


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (xᵀy / d + 1)³."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def unbiased_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² between two equally sized samples: within-set sums skip the diagonal."""
    m = x.shape[0]
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.sum() / (m * m))


def kernel_inception_distance(
    real, fake, *, subsets: int = 100, subset_size: int = 1000, seed: int = 2020
) -> KernelDistance:
    """Mean and (population) std of the MMD² over `subsets` random subsets drawn without replacement.

    The subset size is min(subset_size, N_real, N_fake). The draw order (real subset, then fake subset,
    from one numpy RandomState) is torch-fidelity's, so equal features and seed give its numbers. KID is an
    unbiased estimate and can be slightly negative when the two sets come from the same distribution.
    """
    real_matrix, fake_matrix = as_float64_matrix(real), as_float64_matrix(fake)
    if real_matrix.shape[1] != fake_matrix.shape[1]:
        raise ValueError(f"feature dimensions differ: {real_matrix.shape[1]} vs {fake_matrix.shape[1]}")
    size = min(subset_size, real_matrix.shape[0], fake_matrix.shape[0])
    if size < 2:
        raise ValueError(f"KID needs at least 2 samples on each side, got {real_matrix.shape[0]} and {fake_matrix.shape[0]}")
    rng = np.random.RandomState(seed)
    estimates = np.empty(subsets)
    for index in range(subsets):
        real_subset = real_matrix[rng.choice(real_matrix.shape[0], size, replace=False)]
        fake_subset = fake_matrix[rng.choice(fake_matrix.shape[0], size, replace=False)]
        estimates[index] = unbiased_mmd2(real_subset, fake_subset)
    return KernelDistance(float(estimates.mean()), float(estimates.std()), subsets, size)
