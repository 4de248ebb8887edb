"""Turning numpy arrays, torch tensors and nested lists into float64 numpy matrices."""
from __future__ import annotations

import numpy as np


def as_float64_matrix(values, what: str = "features") -> np.ndarray:
    """(N, D) float64 copy-free view where possible; anything with more axes is flattened per sample."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        raise ValueError(f"{what} must have one row per sample, got a 1-D array of shape {array.shape}")
    if array.ndim > 2:
        array = array.reshape(array.shape[0], -1)
    return array
