import numpy as np
import pytest

from gancli.metrics.manifold import density_coverage, precision_recall


def normal(seed, n, dim, scale=1.0):
    return scale * np.random.default_rng(seed).normal(size=(n, dim))


def test_same_distribution_has_high_precision_and_recall():
    result = precision_recall(normal(0, 1000, 2), normal(1, 1000, 2))
    assert result.precision > 0.95 and result.recall > 0.95


def test_collapsed_generator_has_high_precision_and_no_recall():
    real = normal(0, 400, 16, scale=3.0)
    collapsed = normal(1, 400, 16, scale=0.01)
    result = precision_recall(real, collapsed)
    assert result.precision > 0.8
    assert result.recall < 0.02


def test_coverage_of_an_independent_sample_is_one_minus_half_to_the_k():
    # Naeem et al. 2020: for i.i.d. real and fake sets of equal size N, a real ball (its k nearest real
    # neighbours) misses every fake sample with probability C(N-1, k) / C(2N-1, k) ≈ 2^-k, so
    # E[coverage] ≈ 1 - 2^-k = 0.969 for k = 5 in any dimension, and E[density] = 1.
    result = density_coverage(normal(0, 2000, 8), normal(1, 2000, 8), k=5)
    assert result.coverage == pytest.approx(1 - 0.5**5, abs=0.015)
    assert result.density == pytest.approx(1.0, abs=0.1)


def test_a_generator_missing_one_of_two_modes_covers_half_of_the_real_data():
    offset = np.zeros(4)
    offset[0] = 10.0
    real = np.concatenate([normal(0, 1000, 4) - offset, normal(1, 1000, 4) + offset])
    one_mode = normal(2, 2000, 4) - offset
    dc = density_coverage(real, one_mode, k=5)
    pr = precision_recall(real, one_mode, k=3)
    assert dc.coverage == pytest.approx(0.5, abs=0.03)
    assert pr.recall == pytest.approx(0.5, abs=0.03)
    assert pr.precision > 0.9


def brute_force(real, fake, k_pr, k_dc):
    from scipy.spatial.distance import cdist

    def radii(points, k):
        return np.sort(cdist(points, points), axis=1)[:, k]

    real_r, fake_r = radii(real, k_pr), radii(fake, k_pr)
    fake_to_real = cdist(fake, real)
    precision = np.mean((fake_to_real <= real_r[None]).any(axis=1))
    recall = np.mean((fake_to_real.T <= fake_r[None]).any(axis=1))
    real_r5 = radii(real, k_dc)
    density = (fake_to_real < real_r5[None]).sum() / (k_dc * len(fake))
    coverage = np.mean(fake_to_real.min(axis=0) < real_r5)
    return precision, recall, density, coverage


def test_metrics_match_a_brute_force_computation_in_any_batch_size():
    real, fake = normal(2, 150, 5), normal(3, 120, 5, scale=1.3)
    expected = brute_force(real, fake, 3, 5)
    for block in (7, 1 << 23):
        pr = precision_recall(real, fake, k=3, block_elements=block)
        dc = density_coverage(real, fake, k=5, block_elements=block)
        assert (pr.precision, pr.recall, dc.density, dc.coverage) == pytest.approx(expected, abs=1e-12)


def test_k_must_leave_neighbours_to_count():
    with pytest.raises(ValueError):
        precision_recall(normal(0, 3, 2), normal(1, 3, 2), k=3)
