import numpy as np
import pytest

from gancli.metrics.kid import kernel_inception_distance, polynomial_kernel, unbiased_mmd2


def samples(seed, n=400, dim=16, shift=0.0):
    return np.random.default_rng(seed).normal(size=(n, dim)) + shift


def test_kid_of_two_samples_of_one_distribution_is_near_zero():
    result = kernel_inception_distance(samples(0, n=800), samples(1, n=800), subsets=20, subset_size=200)
    assert abs(result.mean) < 0.02
    assert abs(result.mean) < 3 * result.std


def test_kid_of_shifted_distributions_is_clearly_positive():
    same = kernel_inception_distance(samples(0), samples(1), subsets=5)
    shifted = kernel_inception_distance(samples(0), samples(2, shift=0.5), subsets=5)
    assert shifted.mean > 0.2
    assert shifted.mean > 20 * abs(same.mean)


def test_kid_subsets_are_seeded_and_sized_by_the_smaller_set():
    first = kernel_inception_distance(samples(0, n=300), samples(1, n=120), subsets=5, seed=7)
    again = kernel_inception_distance(samples(0, n=300), samples(1, n=120), subsets=5, seed=7)
    other = kernel_inception_distance(samples(0, n=300), samples(1, n=120), subsets=5, seed=8)
    assert first == again
    assert first.mean != other.mean
    assert first.subset_size == 120


def test_unbiased_mmd2_matches_its_definition_on_a_tiny_case():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    k = lambda a, b: (a @ b / 3 + 1) ** 3  # noqa: E731
    m = 5
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    assert unbiased_mmd2(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)
    assert polynomial_kernel(x, y).shape == (5, 5)


def test_kid_needs_two_samples_per_side():
    with pytest.raises(ValueError):
        kernel_inception_distance(samples(0, n=1), samples(1))
