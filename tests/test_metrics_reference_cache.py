import numpy as np
import pytest

from gancli.metrics.reference_cache import cached_reference_features, reference_cache_key

KEY = {"data": {"location": "/data/fashion-mnist", "fingerprint": "12" * 32}, "split": "test", "count": 100,
       "extractor_sha256": "ab" * 32, "extractor_code": "net/1", "resize": "tf1-bilinear", "loader": "loader/1"}


def features():
    return np.random.default_rng(0).normal(size=(100, 8))


def refuse():
    raise AssertionError("features should have come from the cache")


def test_second_call_reads_the_cache_and_its_provenance(tmp_path):
    first = cached_reference_features(KEY, features, tmp_path, provenance={"device": "cpu", "torch": "2.13.0"})
    assert not first.from_cache and first.path.is_file()
    second = cached_reference_features(KEY, refuse, tmp_path)
    assert second.from_cache
    np.testing.assert_array_equal(second.features, first.features)
    np.testing.assert_array_equal(second.stats.mean, first.stats.mean)
    np.testing.assert_array_equal(second.stats.cov, first.stats.cov)
    assert second.stats.count == 100
    assert second.provenance == {"device": "cpu", "torch": "2.13.0"}
    assert [p.name for p in tmp_path.iterdir()] == [first.path.name]


def test_any_key_field_change_makes_a_new_entry(tmp_path):
    cached_reference_features(KEY, features, tmp_path)
    calls = []
    changes = [("split", "train"), ("count", 200), ("extractor_sha256", "cd" * 32), ("resize", "none"),
               ("extractor_code", "net/2"), ("loader", "loader/2"), ("data", {**KEY["data"], "fingerprint": "34" * 32})]
    for field, value in changes:
        changed = {**KEY, field: value}
        result = cached_reference_features(changed, lambda: calls.append(field) or features(), tmp_path)
        assert not result.from_cache
    assert len(calls) == len(changes)


def test_key_is_canonical_and_requires_the_protocol_fields():
    reordered = dict(reversed(list(KEY.items())))
    assert reference_cache_key(reordered) == reference_cache_key(KEY)
    with pytest.raises(ValueError, match="extractor_sha256"):
        reference_cache_key({k: v for k, v in KEY.items() if k != "extractor_sha256"})


def test_no_cache_computes_and_writes_nothing(tmp_path):
    result = cached_reference_features(KEY, features, tmp_path, no_cache=True)
    assert result.path is None and not result.from_cache
    assert list(tmp_path.iterdir()) == []


def test_a_corrupt_entry_is_recomputed(tmp_path):
    entry = cached_reference_features(KEY, features, tmp_path).path
    entry.write_bytes(b"torn write")
    again = cached_reference_features(KEY, features, tmp_path)
    assert not again.from_cache
    assert cached_reference_features(KEY, refuse, tmp_path).from_cache


def test_default_cache_folder_follows_gancli_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GANCLI_CACHE_DIR", str(tmp_path / "cache"))
    result = cached_reference_features(KEY, features)
    assert result.path.parent == tmp_path / "cache" / "reference"
