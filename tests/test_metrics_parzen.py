import math

import numpy as np
import pytest

from gancli.metrics.parzen import PARZEN_CAVEAT, parzen_log_likelihood

MIXTURE_MEANS = np.array([[-1.0, 0.0], [1.0, 0.5], [0.0, -1.2]])
MIXTURE_STD = 0.3


def mixture_samples(n, seed):
    rng = np.random.default_rng(seed)
    return MIXTURE_MEANS[rng.integers(0, len(MIXTURE_MEANS), n)] + MIXTURE_STD * rng.normal(size=(n, 2))


def mixture_log_density(points):
    squared = ((points[:, None, :] - MIXTURE_MEANS[None]) ** 2).sum(axis=2)
    per_component = -squared / (2 * MIXTURE_STD**2) - math.log(2 * math.pi * MIXTURE_STD**2)
    peak = per_component.max(axis=1)
    return peak + np.log(np.exp(per_component - peak[:, None]).mean(axis=1))


def test_bandwidth_chosen_on_validation_data_is_sensible_for_a_2d_gaussian():
    rng = np.random.default_rng(0)
    generated, validation, test = (rng.normal(scale=0.5, size=(n, 2)) for n in (2000, 500, 500))
    result = parzen_log_likelihood(generated, test, validation)
    # Silverman's rule for 2000 points of std 0.5 gives 0.5 · 2000^(-1/6) ≈ 0.14.
    assert 0.05 < result.sigma < 0.35
    assert not result.sigma_at_grid_edge
    assert result.caveat == PARZEN_CAVEAT
    assert result.validation_log_likelihoods[list(result.sigmas).index(result.sigma)] == max(result.validation_log_likelihoods)


def test_log_likelihood_matches_the_true_density_of_a_known_mixture_with_many_samples():
    generated, validation, test = mixture_samples(8000, 1), mixture_samples(300, 2), mixture_samples(1000, 3)
    result = parzen_log_likelihood(generated, test, validation, sigmas=np.geomspace(0.02, 0.5, 12))
    truth = mixture_log_density(test)
    assert result.mean == pytest.approx(truth.mean(), abs=0.05)
    assert result.standard_error == pytest.approx(truth.std(ddof=1) / math.sqrt(len(test)), rel=0.25)


def test_flattened_images_work_and_block_size_does_not_change_the_answer():
    rng = np.random.default_rng(4)
    generated, validation, test = (rng.uniform(-1, 1, size=(n, 1, 4, 4)) for n in (300, 50, 60))
    sigmas = [0.1, 0.3, 1.0]
    small_blocks = parzen_log_likelihood(generated, test, validation, sigmas=sigmas, block_elements=37)
    large_blocks = parzen_log_likelihood(generated, test, validation, sigmas=sigmas)
    assert small_blocks.mean == pytest.approx(large_blocks.mean, rel=1e-12)
    assert small_blocks.sigma == large_blocks.sigma


def test_far_away_points_give_finite_log_likelihoods():
    generated = np.zeros((10, 2))
    far = np.full((3, 2), 50.0)
    result = parzen_log_likelihood(generated, far, far, sigmas=[1e-3])
    expected = -(2 * 50.0**2) / (2 * 1e-6) - math.log(2 * math.pi * 1e-6)
    assert result.mean == pytest.approx(expected, rel=1e-12)


def test_parzen_through_the_registry_splits_real_samples_for_validation():
    from gancli.metrics import get_metric

    metric = get_metric("parzen")
    values = metric.compute(
        {"real_samples": mixture_samples(400, 5), "fake_samples": mixture_samples(1000, 6)},
        sigmas=np.geomspace(0.03, 0.5, 6),
    )
    assert set(values) == {"parzen_ll_mean", "parzen_ll_sem", "parzen_sigma"}
    assert metric.caveat == PARZEN_CAVEAT
    assert values["parzen_ll_mean"] == pytest.approx(mixture_log_density(mixture_samples(400, 5)).mean(), abs=0.3)
