"""Cache of real-data features and their statistics, keyed by everything that determines them.

The key is the sha256 of a canonical JSON of the key fields: the data's identity (location, split, size and
a fingerprint of its content), the count, the extractor's sha256 and code version, the preprocessing and
the image loader's version at least (StyleGAN2-ADA keys its cache the same way). Change any of them and a
new entry is computed; the old one stays until the cache folder is cleared. Entries are safetensors,
written atomically, and also record (outside the key) how they were made: device, library versions, date.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from gancli.metrics._arrays import as_float64_matrix
from gancli.metrics._files import default_cache_dir, sha256_of_bytes, write_bytes_atomically
from gancli.metrics.frechet import FeatureStats

REQUIRED_KEY_FIELDS = ("data", "split", "count", "extractor_sha256", "extractor_code", "resize", "loader")
CACHE_FORMAT = "gancli-reference-features/2"  # /2: data fingerprints in the key, provenance recorded


@dataclass(frozen=True, eq=False)
class ReferenceFeatures:
    features: np.ndarray  # (N, D) float32, what KID and the k-NN metrics need
    stats: FeatureStats  # float64 mean/covariance of the same features, what FID needs
    path: Path | None  # the cache entry, None when caching is off
    from_cache: bool
    provenance: dict | None = None  # how the entry was computed (device, versions), as recorded in it


def reference_cache_key(key_fields: dict) -> str:
    missing = [field for field in REQUIRED_KEY_FIELDS if field not in key_fields]
    if missing:
        raise ValueError(f"reference cache key lacks {', '.join(missing)}; required: {', '.join(REQUIRED_KEY_FIELDS)}")
    return sha256_of_bytes(canonical_json(key_fields).encode("utf-8"))


def canonical_json(value: dict) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def cached_reference_features(
    key_fields: dict,
    compute_fn: Callable[[], object],
    cache_dir: str | os.PathLike | None = None,
    no_cache: bool = False,
    provenance: dict | None = None,
) -> ReferenceFeatures:
    """Features of the reference (real) data: from the cache when an entry with the same key exists,
    else `compute_fn()` (an (N, D) array or tensor), stored for next time unless `no_cache`, together with
    `provenance` (device, versions: what made the entry, not part of the key).

    Entries live in `cache_dir`, by default `<gancli cache>/reference` (`$GANCLI_CACHE_DIR`, else
    `~/.cache/gancli`). A cache folder that cannot be written only costs recomputation next time.
    """
    key = reference_cache_key(key_fields)
    if no_cache:
        return _fresh(compute_fn, path=None, provenance=provenance)
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir() / "reference"
    path = folder / f"reference-{key[:32]}.safetensors"
    cached = _read_entry(path, key)
    if cached is not None:
        return cached
    result = _fresh(compute_fn, path=path, provenance=provenance)
    try:
        _write_entry(path, key, key_fields, result)
    except OSError as error:
        warnings.warn(f"could not cache reference features in {path.parent}: {error}", stacklevel=2)
        return ReferenceFeatures(result.features, result.stats, None, from_cache=False, provenance=provenance)
    return result


def _fresh(compute_fn: Callable[[], object], path: Path | None, provenance: dict | None) -> ReferenceFeatures:
    features = as_float64_matrix(compute_fn())
    stats = FeatureStats.from_features(features)
    return ReferenceFeatures(features.astype(np.float32), stats, path, from_cache=False, provenance=provenance)


def _write_entry(path: Path, key: str, key_fields: dict, result: ReferenceFeatures) -> None:
    from safetensors.numpy import save

    tensors = {"features": result.features, "mean": result.stats.mean, "cov": result.stats.cov}
    metadata = {
        "format": CACHE_FORMAT, "key": key, "key_fields": canonical_json(key_fields), "count": str(result.stats.count),
        "provenance": canonical_json(result.provenance or {}),
    }
    write_bytes_atomically(path, save(tensors, metadata=metadata))


def _read_entry(path: Path, key: str) -> ReferenceFeatures | None:
    if not path.is_file():
        return None
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="np") as handle:
            header = handle.metadata() or {}
            if header.get("format") != CACHE_FORMAT or header.get("key") != key:
                return None
            stats = FeatureStats(handle.get_tensor("mean"), handle.get_tensor("cov"), int(header["count"]))
            provenance = json.loads(header.get("provenance") or "{}")
            return ReferenceFeatures(handle.get_tensor("features"), stats, path, from_cache=True, provenance=provenance)
    except Exception:  # a truncated or foreign file is recomputed and replaced, never trusted
        return None
