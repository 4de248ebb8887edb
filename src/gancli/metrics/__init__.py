"""GAN evaluation metrics: FID, KID, IS, precision/recall, density/coverage, Parzen log-likelihood.

Cheap to import: the registry is loaded now, everything numerical (numpy, torch) on first use of a name.
"""
from __future__ import annotations

from importlib import import_module

from gancli.metrics.registry import METRICS, Metric, get_metric, register_metric

_LAZY_NAMES = {
    "FeatureStats": "gancli.metrics.frechet",
    "frechet_distance": "gancli.metrics.frechet",
    "kernel_inception_distance": "gancli.metrics.kid",
    "inception_score": "gancli.metrics.inception_score",
    "precision_recall": "gancli.metrics.manifold",
    "density_coverage": "gancli.metrics.manifold",
    "parzen_log_likelihood": "gancli.metrics.parzen",
    "get_extractor": "gancli.metrics.extractors",
    "InceptionExtractor": "gancli.metrics.extractors",
    "train_extractor": "gancli.metrics.classifier",
    "save_extractor": "gancli.metrics.classifier",
    "load_extractor": "gancli.metrics.classifier",
    "cached_reference_features": "gancli.metrics.reference_cache",
}

__all__ = ["METRICS", "Metric", "get_metric", "register_metric", *_LAZY_NAMES]


def __getattr__(name: str):
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'gancli.metrics' has no attribute {name!r}")
    return getattr(import_module(module), name)
