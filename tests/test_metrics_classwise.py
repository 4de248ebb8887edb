"""Class accuracy and intra-FID (gancli.metrics.classwise) and their registry entries."""
from __future__ import annotations

import math

import numpy as np
import pytest

from gancli.metrics import get_metric
from gancli.metrics.classwise import class_accuracy, intra_fid
from gancli.metrics.frechet import frechet_distance


def test_class_accuracy_counts_argmax_hits_per_class():
    logits = np.array([[5, 0, 0], [0, 5, 0], [5, 0, 0], [0, 0, 5], [0, 5, 0], [0, 0, 5]], dtype=float)
    classes = np.array([0, 1, 1, 2, 2, 2])  # right, right, wrong, right, wrong, right
    result = class_accuracy(logits, classes, 3)
    assert result.accuracy == pytest.approx(4 / 6)
    assert result.per_class == pytest.approx([1.0, 0.5, 2 / 3]) and result.counts == [1, 2, 3]


def test_a_class_without_samples_has_no_accuracy_and_bad_classes_are_refused():
    result = class_accuracy(np.eye(3)[[0, 0]], np.array([0, 0]), 3)
    assert result.per_class[0] == 1.0 and math.isnan(result.per_class[1]) and result.counts == [2, 0, 0]
    with pytest.raises(ValueError, match="0..2"):
        class_accuracy(np.eye(3), np.array([0, 1, 3]), 3)
    with pytest.raises(ValueError, match="logits have 3 classes"):
        class_accuracy(np.eye(3), np.array([0, 1, 2]), 4)


def test_intra_fid_is_the_unweighted_mean_of_each_classs_fid():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(90, 4))
    real_classes = np.repeat([0, 1, 2], 30)
    fake = rng.normal(size=(60, 4)) + np.repeat([[0.0], [1.0], [3.0]], 20, axis=0)
    fake_classes = np.repeat([0, 1, 2], 20)
    result = intra_fid(real, real_classes, fake, fake_classes, 3)
    expected = [frechet_distance(real[real_classes == k], fake[fake_classes == k]) for k in range(3)]
    assert result.per_class == pytest.approx(expected) and result.mean == pytest.approx(np.mean(expected))
    assert result.per_class[0] < result.per_class[1] < result.per_class[2]  # the shifted classes are further
    assert result.measured_counts == [20] * 3 and result.reference_counts == [30] * 3
    # not the FID of the mixtures: moving whole classes between labels leaves FID alone, not intra-FID
    swapped = intra_fid(real, real_classes, fake, (fake_classes + 1) % 3, 3)
    assert swapped.mean != pytest.approx(result.mean)


def test_intra_fid_needs_two_rows_of_each_class_on_each_side():
    rng = np.random.default_rng(1)
    with pytest.raises(ValueError, match="class 1 has 1 real"):
        intra_fid(rng.normal(size=(5, 2)), np.array([0, 0, 1, 2, 2]), rng.normal(size=(6, 2)), np.array([0, 0, 1, 1, 2, 2]), 3)


def test_the_registry_entries_return_per_class_values_and_their_counts():
    rng = np.random.default_rng(2)
    inputs = {
        "fake_logits": rng.normal(size=(40, 4)), "fake_classes": np.arange(40) % 4, "num_classes": 4,
        "fake_features": rng.normal(size=(40, 3)), "real_class_features": rng.normal(size=(48, 3)),
        "real_classes": np.arange(48) % 4,
    }
    values, parameters = get_metric("class-acc").compute_with_parameters(inputs)
    assert set(values) == {"class_acc", "class_acc_0", "class_acc_1", "class_acc_2", "class_acc_3"}
    assert parameters["per_class_counts"] == [10] * 4 and parameters["classes"] == 4
    values, parameters = get_metric("intra-fid").compute_with_parameters(inputs)
    assert values["intra_fid"] == pytest.approx(np.mean([values[f"intra_fid_{k}"] for k in range(4)]))
    assert parameters["per_class_counts"] == {"measured": [10] * 4, "reference": [12] * 4}
    assert get_metric("intra-fid").caveat and get_metric("class-acc").sensitive_to
