"""The metric registry: names → what each metric needs and how to compute it (after NVlabs' metric_main).

Importing this module is cheap: each built-in metric imports its numerical module only when computed.
Inputs a metric can ask for (keys of the mapping passed to `Metric.compute`):

- "real_features", "fake_features": (N, D) extractor features; "real_features" may also be a FeatureStats
  (cached reference statistics) for metrics that only need mean and covariance (FID).
- "fake_logits": (N, C) classifier logits of generated images.
- "real_samples", "fake_samples": raw samples (2-D points or images, flattened per sample);
  "validation_samples" optionally gives Parzen's held-out bandwidth-selection set.
- "mode_centers", "mode_std": the (K, d) means and per-coordinate std of a Gaussian-mixture toy (modes).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from gancli.errors import GancliError

REAL_FEATURES = "real_features"
FAKE_FEATURES = "fake_features"
FAKE_LOGITS = "fake_logits"
REAL_SAMPLES = "real_samples"
FAKE_SAMPLES = "fake_samples"
VALIDATION_SAMPLES = "validation_samples"
MODE_CENTERS = "mode_centers"
MODE_STD = "mode_std"

PARZEN_CAVEAT = "Parzen estimates are unreliable in high dimension (Theis et al. 2016)"


@dataclass(frozen=True)
class Metric:
    name: str
    version: str  # bump when a change of formula or default would change reported numbers
    needs: frozenset[str]
    summary: str
    compute_fn: Callable[..., dict[str, float]]
    caveat: str | None = None

    def compute(self, inputs: Mapping[str, Any], **options: Any) -> dict[str, float]:
        """Named float results; `options` are the metric's keyword arguments (seed, k, splits, ...)."""
        missing = sorted(self.needs - set(inputs))
        if missing:
            raise ValueError(f"metric {self.name!r} needs {', '.join(missing)}")
        return self.compute_fn(inputs, **options)


METRICS: dict[str, Metric] = {}


def register_metric(name: str, *, version: str, needs, summary: str, caveat: str | None = None):
    """Decorator registering `fn(inputs, **options) -> dict[str, float]` under `name`."""

    def decorate(fn: Callable[..., dict[str, float]]):
        if name in METRICS:
            raise ValueError(f"metric {name!r} is already registered")
        METRICS[name] = Metric(name, version, frozenset(needs), summary, fn, caveat)
        return fn

    return decorate


def get_metric(name: str) -> Metric:
    try:
        return METRICS[name]
    except KeyError:
        raise GancliError(f"unknown metric {name!r}; known metrics: {', '.join(sorted(METRICS))}") from None


@register_metric(
    "fid", version="1", needs={REAL_FEATURES, FAKE_FEATURES},
    summary="Fréchet distance between Gaussians fitted to real and generated features",
)
def _fid(inputs, **options) -> dict[str, float]:
    from gancli.metrics.frechet import frechet_distance

    return {"fid": frechet_distance(inputs[REAL_FEATURES], inputs[FAKE_FEATURES], **options)}


@register_metric(
    "kid", version="1", needs={REAL_FEATURES, FAKE_FEATURES},
    summary="Kernel distance: unbiased MMD² with a cubic polynomial kernel, 100 subsets of up to 1000",
)
def _kid(inputs, **options) -> dict[str, float]:
    from gancli.metrics.kid import kernel_inception_distance

    result = kernel_inception_distance(_features(inputs[REAL_FEATURES]), inputs[FAKE_FEATURES], **options)
    return {"kid_mean": result.mean, "kid_std": result.std}


@register_metric(
    "is", version="1", needs={FAKE_LOGITS},
    summary="Inception Score exp(E KL(p(y|x) ‖ p(y))) over 10 splits, from generated-image logits",
)
def _inception_score(inputs, **options) -> dict[str, float]:
    from gancli.metrics.inception_score import inception_score

    result = inception_score(inputs[FAKE_LOGITS], **options)
    return {"is_mean": result.mean, "is_std": result.std}


@register_metric(
    "pr", version="1", needs={REAL_FEATURES, FAKE_FEATURES},
    summary="Improved precision and recall (k-NN manifolds, k = 3)",
)
def _precision_recall(inputs, **options) -> dict[str, float]:
    from gancli.metrics.manifold import precision_recall

    result = precision_recall(_features(inputs[REAL_FEATURES]), inputs[FAKE_FEATURES], **options)
    return {"precision": result.precision, "recall": result.recall}


@register_metric(
    "dc", version="1", needs={REAL_FEATURES, FAKE_FEATURES},
    summary="Density and coverage (real-side k-NN balls, k = 5)",
)
def _density_coverage(inputs, **options) -> dict[str, float]:
    from gancli.metrics.manifold import density_coverage

    result = density_coverage(_features(inputs[REAL_FEATURES]), inputs[FAKE_FEATURES], **options)
    return {"density": result.density, "coverage": result.coverage}


@register_metric(
    "parzen", version="1", needs={REAL_SAMPLES, FAKE_SAMPLES},
    summary="Parzen-window log-likelihood of real samples under a Gaussian KDE on generated ones",
    caveat=PARZEN_CAVEAT,
)
def _parzen(inputs, *, seed: int = 0, **options) -> dict[str, float]:
    import numpy as np

    from gancli.metrics.parzen import parzen_log_likelihood

    test = np.asarray(inputs[REAL_SAMPLES])
    validation = inputs.get(VALIDATION_SAMPLES)
    if validation is None:
        # Without a separate validation set, half of the real samples (seeded) choose the bandwidth.
        order = np.random.RandomState(seed).permutation(len(test))
        half = len(test) // 2
        validation, test = test[order[:half]], test[order[half:]]
    result = parzen_log_likelihood(inputs[FAKE_SAMPLES], test, validation, **options)
    return {"parzen_ll_mean": result.mean, "parzen_ll_sem": result.standard_error, "parzen_sigma": result.sigma}


@register_metric(
    "modes", version="1", needs={FAKE_SAMPLES, MODE_CENTERS, MODE_STD},
    summary="Modes captured, high-quality share and reverse KL on a 2-D Gaussian mixture (VEEGAN/PacGAN protocol)",
)
def _modes(inputs, **options) -> dict[str, float]:
    from gancli.metrics.modes import mode_coverage

    result = mode_coverage(inputs[FAKE_SAMPLES], inputs[MODE_CENTERS], float(inputs[MODE_STD]), **options)
    return {
        "modes_captured": float(result.modes_captured),
        "total_modes": float(result.total_modes),
        "high_quality_share": result.high_quality_share,
        "reverse_kl": result.reverse_kl,
    }


def _features(value):
    from gancli.metrics.frechet import FeatureStats

    if isinstance(value, FeatureStats):
        raise ValueError("this metric needs the real features themselves, not only their mean and covariance")
    return value
