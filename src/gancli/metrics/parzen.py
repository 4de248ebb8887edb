"""Parzen-window log-likelihood (Goodfellow et al. 2014, after Breuleux et al.): a Gaussian kernel density
placed on generated samples, its bandwidth chosen on held-out validation data, scored on test data.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from gancli.metrics._arrays import as_float64_matrix
from gancli.metrics.caveats import PARZEN_CAVEAT

# Elements of one float64 block of squared distances (32 MiB); each bandwidth reuses the block.
DEFAULT_BLOCK_ELEMENTS = 1 << 22


class ParzenResult(NamedTuple):
    mean: float  # mean test log-likelihood, nats per sample, in the data's own units
    standard_error: float
    sigma: float
    sigma_at_grid_edge: bool  # True when the best bandwidth is the smallest or largest one tried
    sigmas: tuple[float, ...]
    validation_log_likelihoods: tuple[float, ...]
    caveat: str


def default_sigma_grid(generated: np.ndarray, num: int = 36) -> np.ndarray:
    """Bandwidths from 10⁻³ to 10^0.5 times the samples' overall scale (root mean per-axis variance).

    Goodfellow et al. searched logspace(-1, 0, 10) on MNIST pixels in [0, 1]; a scale-relative grid also
    works for 2-D toy data whose modes are far narrower than the spread of the whole set.
    """
    scale = float(np.sqrt(generated.var(axis=0).mean()))
    if scale == 0.0:
        scale = 1.0
    return scale * np.logspace(-3.0, 0.5, num)


def parzen_log_likelihood(
    generated, test, validation, *, sigmas=None, block_elements: int = DEFAULT_BLOCK_ELEMENTS
) -> ParzenResult:
    """log p̂(x) = logmeanexp_j(−‖x − g_j‖² / 2σ²) − (d/2)·log(2πσ²), σ maximising the validation mean.

    Inputs are flattened per sample, so 2-D points and images both work. Values are in the caller's units:
    gancli images live in [-1, 1], which lowers every log-likelihood by d·log 2 compared with the [0, 1]
    pixels of the GAN paper. Reports the test mean ± standard error (std / √N).
    """
    centres = torch.from_numpy(as_float64_matrix(generated, "generated samples"))
    test_points = torch.from_numpy(as_float64_matrix(test, "test samples"))
    validation_points = torch.from_numpy(as_float64_matrix(validation, "validation samples"))
    if not centres.shape[1] == test_points.shape[1] == validation_points.shape[1]:
        raise ValueError("generated, test and validation samples must have the same dimension")
    grid = np.asarray(default_sigma_grid(centres.numpy()) if sigmas is None else sigmas, dtype=np.float64)
    if grid.ndim != 1 or grid.size == 0 or np.any(grid <= 0):
        raise ValueError("sigmas must be a non-empty list of positive bandwidths")

    validation_means = log_likelihoods(validation_points, centres, grid, block_elements).mean(dim=0)
    best = int(torch.argmax(validation_means))
    test_values = log_likelihoods(test_points, centres, grid[best : best + 1], block_elements)[:, 0]
    count = test_values.shape[0]
    standard_error = float(test_values.std(correction=1)) / math.sqrt(count) if count > 1 else float("nan")
    return ParzenResult(
        mean=float(test_values.mean()),
        standard_error=standard_error,
        sigma=float(grid[best]),
        sigma_at_grid_edge=grid.size > 1 and best in (0, grid.size - 1),
        sigmas=tuple(float(s) for s in grid),
        validation_log_likelihoods=tuple(float(v) for v in validation_means),
        caveat=PARZEN_CAVEAT,
    )


def log_likelihoods(points: torch.Tensor, centres: torch.Tensor, sigmas: np.ndarray, block_elements: int) -> torch.Tensor:
    """(N, S) log-density of each point under the kernel density with each of the S bandwidths.

    Squared distances are computed once per block and reused for every bandwidth; blocks of centres are
    merged with logaddexp, so any number of centres fits in memory and nothing under- or overflows.
    """
    num_centres, dim = centres.shape
    half_inverse_variances = [0.5 / float(sigma) ** 2 for sigma in sigmas]
    normalisers = torch.tensor(
        [math.log(num_centres) + 0.5 * dim * math.log(2.0 * math.pi * float(sigma) ** 2) for sigma in sigmas],
        dtype=torch.float64,
    )
    centre_step = min(num_centres, max(1, block_elements))
    row_step = max(1, block_elements // centre_step)
    centre_norms = (centres * centres).sum(dim=1)
    result = torch.empty(points.shape[0], len(sigmas), dtype=torch.float64)
    for start in range(0, points.shape[0], row_step):
        rows = points[start : start + row_step]
        row_norms = (rows * rows).sum(dim=1, keepdim=True)
        running = torch.full((rows.shape[0], len(sigmas)), -math.inf, dtype=torch.float64)
        for c_start in range(0, num_centres, centre_step):
            chunk = slice(c_start, c_start + centre_step)
            squared = (row_norms - 2.0 * rows @ centres[chunk].T + centre_norms[chunk]).clamp_min_(0.0)
            for column, factor in enumerate(half_inverse_variances):
                block_lse = torch.logsumexp(squared * -factor, dim=1)
                running[:, column] = torch.logaddexp(running[:, column], block_lse)
        result[start : start + rows.shape[0]] = running - normalisers
    return result
