import subprocess
import sys

import numpy as np
import pytest

from gancli.errors import GancliError
from gancli.metrics import METRICS, get_metric, register_metric
from gancli.metrics.frechet import FeatureStats


def test_registry_knows_the_built_in_metrics_and_what_they_need():
    assert set(METRICS) >= {"fid", "kid", "is", "pr", "dc", "parzen"}
    assert get_metric("is").needs == {"fake_logits"}
    assert get_metric("parzen").needs == {"real_samples", "fake_samples"}
    for metric in METRICS.values():
        assert metric.version and metric.summary


def test_unknown_metric_is_a_one_line_error_naming_the_known_ones():
    with pytest.raises(GancliError) as caught:
        get_metric("fd")
    message = str(caught.value)
    assert "\n" not in message
    assert all(name in message for name in ("fid", "kid", "is", "pr", "dc", "parzen"))


def test_compute_returns_named_floats():
    rng = np.random.default_rng(0)
    inputs = {
        "real_features": rng.normal(size=(120, 6)),
        "fake_features": rng.normal(size=(120, 6)) + 0.1,
        "fake_logits": rng.normal(size=(120, 5)),
    }
    expected_keys = {"fid": {"fid"}, "kid": {"kid_mean", "kid_std"}, "is": {"is_mean", "is_std"},
                     "pr": {"precision", "recall"}, "dc": {"density", "coverage"}}
    for name, keys in expected_keys.items():
        values = get_metric(name).compute(inputs)
        assert set(values) == keys
        assert all(isinstance(value, float) for value in values.values())


def test_fid_accepts_cached_statistics_but_kid_needs_features():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(50, 4)), rng.normal(size=(50, 4))
    stats = FeatureStats.from_features(real)
    from_stats = get_metric("fid").compute({"real_features": stats, "fake_features": fake})
    assert from_stats == pytest.approx(get_metric("fid").compute({"real_features": real, "fake_features": fake}))
    with pytest.raises(ValueError, match="features themselves"):
        get_metric("kid").compute({"real_features": stats, "fake_features": fake})


def test_missing_inputs_are_named():
    with pytest.raises(ValueError, match="fake_features"):
        get_metric("fid").compute({"real_features": np.zeros((3, 2))})


def test_names_cannot_be_registered_twice():
    with pytest.raises(ValueError, match="already registered"):
        register_metric("fid", version="9", needs=(), summary="duplicate")(lambda inputs: {})


def test_importing_the_metrics_package_does_not_import_torch_or_numpy():
    code = "import sys, gancli.metrics; print('torch' in sys.modules, 'numpy' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.split() == ["False", "False"]


def test_every_metric_says_what_it_is_sensitive_to():
    assert all(metric.sensitive_to for metric in METRICS.values())
    assert "blind to the real data" in get_metric("is").sensitive_to


def test_floors_are_found_only_for_the_protocol_they_were_measured_under():
    from gancli.metrics.floors import FLOOR_TABLES, FMNIST_CNN_SHA256, format_count

    at_10k = next(table for table in FLOOR_TABLES if table.count == 10_000)
    fid = get_metric("fid")
    floor = fid.floor("fid", extractor_sha256=FMNIST_CNN_SHA256, reference_pixels_sha256=at_10k.reference_pixels_sha256, count=10_000)
    assert floor.value == pytest.approx(0.259) and floor.describe() == "real-vs-real floor at N = 10k: 0.259"
    assert fid.floor("fid", extractor_sha256=FMNIST_CNN_SHA256, reference_pixels_sha256=at_10k.reference_pixels_sha256, count=5_000) is None
    assert fid.floor("fid", extractor_sha256="0" * 64, reference_pixels_sha256=at_10k.reference_pixels_sha256, count=10_000) is None
    assert fid.floor("recall", extractor_sha256=FMNIST_CNN_SHA256, reference_pixels_sha256="1" * 64, count=10_000) is None
    assert [format_count(n) for n in (10_000, 2_500, 50_000, 40, 1_234)] == ["10k", "2.5k", "50k", "40", "1234"]


def test_compute_with_parameters_reports_what_kid_really_used():
    rng = np.random.default_rng(2)
    inputs = {"real_features": rng.normal(size=(30, 4)), "fake_features": rng.normal(size=(50, 4))}
    values, parameters = get_metric("kid").compute_with_parameters(inputs, seed=7)
    assert set(values) == {"kid_mean", "kid_std"}
    assert (parameters["subset_size"], parameters["subsets"], parameters["seed"]) == (30, 100, 7)
    assert parameters["subsets_are_full_sets"] is False  # the 50 fake features still vary between subsets
