"""Metrics of class-conditional generators: class accuracy and intra-FID.

- Class accuracy: the share of samples generated for class k that a classifier assigns to class k (the
  argmax of its K logits), overall and per class; the "classification accuracy" of AC-GAN (Odena et al.
  2017, section 4.1: a pre-trained Inception network on ImageNet samples) with a classifier of the
  data's own classes.
- Intra-FID (Miyato & Koyama 2018, "cGANs with Projection Discriminator", section 4.1): the FID of each
  class's generated samples against the real examples of that class, averaged over the classes with equal
  weights.

Inputs are numpy arrays or torch tensors; class indices are integers 0..K-1.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gancli.metrics._arrays import as_float64_matrix


@dataclass(frozen=True)
class ClassAccuracy:
    accuracy: float  # over all samples
    per_class: list[float]  # NaN for a class without samples
    counts: list[int]  # samples generated for each class


@dataclass(frozen=True)
class IntraFID:
    mean: float  # unweighted mean of the per-class FIDs
    per_class: list[float]
    measured_counts: list[int]
    reference_counts: list[int]


def class_accuracy(logits, classes, num_classes: int) -> ClassAccuracy:
    """Share of rows whose argmax over `logits` (N, K) equals `classes` (N,), overall and per class."""
    scores = as_float64_matrix(logits, "logits")
    wanted = _classes(classes, len(scores), num_classes)
    if scores.shape[1] != num_classes:
        raise ValueError(f"logits have {scores.shape[1]} classes, the samples {num_classes}")
    correct = scores.argmax(axis=1) == wanted
    counts = np.bincount(wanted, minlength=num_classes)
    hits = np.bincount(wanted, weights=correct.astype(np.float64), minlength=num_classes)
    per_class = [float(h / c) if c else float("nan") for h, c in zip(hits, counts)]
    return ClassAccuracy(float(correct.mean()), per_class, [int(c) for c in counts])


def intra_fid(real_features, real_classes, fake_features, fake_classes, num_classes: int) -> IntraFID:
    """FID of each class k (real rows of class k vs generated rows of class k), and their mean."""
    from gancli.metrics.frechet import frechet_distance

    real = as_float64_matrix(real_features)
    fake = as_float64_matrix(fake_features)
    real_k = _classes(real_classes, len(real), num_classes)
    fake_k = _classes(fake_classes, len(fake), num_classes)
    per_class, real_counts, fake_counts = [], [], []
    for k in range(num_classes):
        r, f = real[real_k == k], fake[fake_k == k]
        if len(r) < 2 or len(f) < 2:
            raise ValueError(f"class {k} has {len(r)} real and {len(f)} generated rows; a covariance needs at least 2 of each")
        per_class.append(frechet_distance(r, f))
        real_counts.append(len(r))
        fake_counts.append(len(f))
    return IntraFID(float(np.mean(per_class)), per_class, fake_counts, real_counts)


def _classes(values, rows: int, num_classes: int) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.shape != (rows,) or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"classes must be {rows} integers, got {array.dtype} of shape {array.shape}")
    if rows and (array.min() < 0 or array.max() >= num_classes):
        raise ValueError(f"classes must lie in 0..{num_classes - 1}")
    return array.astype(np.int64)
