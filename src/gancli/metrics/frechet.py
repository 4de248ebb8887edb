"""Fréchet distance between Gaussians fitted to feature sets (FID when the features are Inception pool3)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
import numpy as np

from gancli.errors import GancliError
from gancli.metrics._arrays import as_float64_matrix
from gancli.metrics._files import write_bytes_atomically

FEATURE_STATS_FORMAT = "gancli-feature-stats/1"


@dataclass(frozen=True, eq=False)
class FeatureStats:
    """Mean, covariance (unbiased, N-1) and sample count of a feature set, in float64."""

    mean: np.ndarray
    cov: np.ndarray
    count: int

    @classmethod
    def from_features(cls, features) -> "FeatureStats":
        matrix = as_float64_matrix(features)
        if matrix.shape[0] < 2:
            raise ValueError(f"need at least 2 feature vectors for a covariance, got {matrix.shape[0]}")
        return cls(mean=matrix.mean(axis=0), cov=np.cov(matrix, rowvar=False), count=int(matrix.shape[0]))

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    def save(self, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> Path:
        from safetensors.numpy import save

        header = {"format": FEATURE_STATS_FORMAT, "count": str(self.count), **(metadata or {})}
        tensors = {"mean": np.ascontiguousarray(self.mean), "cov": np.ascontiguousarray(self.cov)}
        return write_bytes_atomically(path, save(tensors, metadata=header))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FeatureStats":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="np") as handle:
                header = handle.metadata() or {}
                if header.get("format") != FEATURE_STATS_FORMAT:
                    raise GancliError(f"{path} is not a gancli feature-statistics file; write one with FeatureStats.save")
                return cls(mean=handle.get_tensor("mean"), cov=handle.get_tensor("cov"), count=int(header["count"]))
        except GancliError:
            raise
        except Exception as error:  # safetensors raises its own error types for truncated or foreign files
            raise GancliError(f"cannot read feature statistics from {path}: {error}") from error


def as_feature_stats(value) -> FeatureStats:
    """Statistics as given, or fitted to an (N, D) feature matrix (numpy array or torch tensor)."""
    return value if isinstance(value, FeatureStats) else FeatureStats.from_features(value)


def frechet_distance(real, fake) -> float:
    """‖μ_r − μ_g‖² + Tr(Σ_r) + Tr(Σ_g) − 2·Tr((Σ_r Σ_g)^½).

    Tr(√A) is the sum of the square roots of A's eigenvalues. Σ_r Σ_g is not symmetric and round-off gives
    it tiny negative or complex eigenvalues, so they are square-rooted as complex numbers and only the real
    part is kept (torch-fidelity ≥ 0.4, torchmetrics); this avoids scipy.linalg.sqrtm and its failure modes.
    """
    a, b = as_feature_stats(real), as_feature_stats(fake)
    if a.dim != b.dim:
        raise ValueError(f"feature dimensions differ: {a.dim} vs {b.dim}")
    mean_term = float(np.sum((a.mean - b.mean) ** 2))
    eigenvalues = np.linalg.eigvals(a.cov @ b.cov).astype(np.complex128)
    trace_sqrt = float(np.sum(np.sqrt(eigenvalues)).real)
    return mean_term + float(np.trace(a.cov)) + float(np.trace(b.cov)) - 2.0 * trace_sqrt

