import numpy as np
import pytest

from gancli.metrics.inception_score import inception_score


def confident_logits(classes_per_sample, num_classes):
    logits = np.full((len(classes_per_sample), num_classes), -50.0)
    logits[np.arange(len(classes_per_sample)), classes_per_sample] = 50.0
    return logits


def test_identical_predictions_score_one():
    logits = np.tile(np.random.default_rng(0).normal(size=(1, 20)), (500, 1))
    result = inception_score(logits)
    assert result.mean == pytest.approx(1.0, abs=1e-9)
    assert result.std == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("num_classes", [2, 10, 37])
def test_confident_predictions_spread_evenly_over_c_classes_score_c(num_classes):
    # Each split holds every class equally often, so each split scores exactly C.
    logits = confident_logits(np.tile(np.arange(num_classes), 10 * 3), num_classes)
    result = inception_score(logits, splits=10, shuffle=False)
    assert result.mean == pytest.approx(num_classes, rel=1e-9)


def test_shuffled_even_spread_scores_close_to_c():
    logits = confident_logits(np.tile(np.arange(10), 500), 10)
    assert inception_score(logits).mean == pytest.approx(10.0, rel=0.02)


def test_score_ignores_a_constant_added_to_logits_and_is_seeded():
    logits = np.random.default_rng(1).normal(scale=3.0, size=(400, 12))
    base = inception_score(logits, seed=5)
    assert inception_score(logits + 123.0, seed=5).mean == pytest.approx(base.mean, rel=1e-12)
    assert inception_score(logits, seed=5) == base


def test_classes_never_predicted_do_not_produce_nan():
    logits = confident_logits(np.tile(np.arange(3), 100), 3)
    logits = np.concatenate([logits, np.full((300, 2), -1e4)], axis=1)
    assert inception_score(logits).mean == pytest.approx(3.0, rel=0.05)


def test_fewer_samples_than_splits_is_an_error():
    with pytest.raises(ValueError):
        inception_score(np.zeros((5, 3)), splits=10)
