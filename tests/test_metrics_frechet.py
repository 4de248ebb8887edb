import numpy as np
import pytest
import torch

from gancli.errors import GancliError
from gancli.metrics.frechet import FeatureStats, frechet_distance


def gaussian_features(seed, n=600, dim=32, shift=0.0, scale=1.0):
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(dim, dim)) / np.sqrt(dim)
    return shift + scale * rng.normal(size=(n, dim)) @ mixing


def test_fid_of_a_set_with_itself_is_zero():
    features = gaussian_features(0)
    assert abs(frechet_distance(features, features)) < 1e-6


def test_fid_of_diagonal_gaussians_matches_closed_form():
    rng = np.random.default_rng(1)
    mean_a, mean_b = rng.normal(size=50), rng.normal(size=50)
    var_a, var_b = rng.uniform(0.1, 4.0, size=50), rng.uniform(0.1, 4.0, size=50)
    expected = np.sum((mean_a - mean_b) ** 2) + np.sum((np.sqrt(var_a) - np.sqrt(var_b)) ** 2)
    got = frechet_distance(FeatureStats(mean_a, np.diag(var_a), 1000), FeatureStats(mean_b, np.diag(var_b), 1000))
    assert got == pytest.approx(expected, rel=1e-10)


def test_fid_of_isotropic_gaussians_is_shift_plus_scale_term():
    dim, shift, scale = 64, 0.3, 1.7
    identity = FeatureStats(np.zeros(dim), np.eye(dim), 10)
    moved = FeatureStats(np.full(dim, shift), scale**2 * np.eye(dim), 10)
    assert frechet_distance(identity, moved) == pytest.approx(dim * shift**2 + dim * (1 - scale) ** 2, rel=1e-12)


@pytest.mark.parametrize("n,dim", [(400, 16), (300, 64), (40, 64)])
def test_fid_agrees_with_scipy_sqrtm_formulation(n, dim):
    from scipy import linalg

    real, fake = gaussian_features(2, n, dim), gaussian_features(3, n, dim, shift=0.2, scale=1.3)
    a, b = FeatureStats.from_features(real), FeatureStats.from_features(fake)
    root = linalg.sqrtm(a.cov @ b.cov)
    reference = np.sum((a.mean - b.mean) ** 2) + np.trace(a.cov) + np.trace(b.cov) - 2 * np.trace(root).real
    assert frechet_distance(a, b) == pytest.approx(reference, rel=1e-6, abs=1e-6)


def test_fid_stays_finite_when_covariances_are_singular():
    # Three samples in 4-D: rank-2 covariances whose product has zero eigenvalues that round-off turns
    # into tiny negative or complex ones; a real square root of those would give NaN.
    rng = np.random.default_rng(4)
    value = frechet_distance(rng.normal(size=(3, 4)), rng.normal(size=(3, 4)))
    assert np.isfinite(value) and value > 0


def test_fid_accepts_torch_tensors_and_stats_alike():
    real, fake = gaussian_features(5), gaussian_features(6, shift=0.5)
    from_arrays = frechet_distance(real, fake)
    assert frechet_distance(torch.from_numpy(real), torch.from_numpy(fake)) == pytest.approx(from_arrays, rel=1e-12)
    assert frechet_distance(FeatureStats.from_features(real), fake) == pytest.approx(from_arrays, rel=1e-12)


def test_feature_stats_round_trip_through_safetensors(tmp_path):
    stats = FeatureStats.from_features(gaussian_features(7, n=100, dim=8))
    path = stats.save(tmp_path / "stats.safetensors", metadata={"extractor": "inception"})
    loaded = FeatureStats.load(path)
    assert loaded.count == 100
    np.testing.assert_array_equal(loaded.mean, stats.mean)
    np.testing.assert_array_equal(loaded.cov, stats.cov)
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as handle:
        assert handle.metadata()["extractor"] == "inception"
    assert [p.name for p in tmp_path.iterdir()] == ["stats.safetensors"]


def test_loading_a_foreign_file_as_stats_is_a_user_error(tmp_path):
    from safetensors.numpy import save_file

    save_file({"x": np.zeros(3)}, str(tmp_path / "other.safetensors"))
    (tmp_path / "garbage.safetensors").write_bytes(b"not a safetensors file")
    for name in ("other.safetensors", "garbage.safetensors"):
        with pytest.raises(GancliError):
            FeatureStats.load(tmp_path / name)


def test_feature_stats_need_two_samples():
    with pytest.raises(ValueError):
        FeatureStats.from_features(np.zeros((1, 4)))
