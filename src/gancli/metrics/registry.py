"""The metric registry: names → what each metric needs and how to compute it (after NVlabs' metric_main).

Importing this module is cheap: each built-in metric imports its numerical module only when computed.
Inputs a metric can ask for (keys of the mapping passed to `Metric.compute`):

- "real_features", "fake_features": (N, D) extractor features; "real_features" may also be a FeatureStats
  (cached reference statistics) for metrics that only need mean and covariance (FID).
- "fake_logits": (N, C) classifier logits of generated images.
- "real_samples", "fake_samples": raw samples (2-D points or images, flattened per sample);
  "validation_samples" optionally gives Parzen's held-out bandwidth-selection set.
- "mode_centers", "mode_std": the (K, d) means and per-coordinate std of a Gaussian-mixture toy (modes).
- "fake_classes": (N,) the class each generated sample was made for; "num_classes": K (class-acc, intra-fid).
- "real_class_features", "real_classes": features and labels of class-balanced real examples (intra-fid).

A metric's function returns its named floats, or (named floats, effective parameters): the values its
options really took (KID's subset size after clamping, the seed, k, IS splits, ...), which `gancli eval`
records in the protocol. Each metric also says what it is sensitive to, and `Metric.floor` looks up its
measured real-vs-real floor (gancli.metrics.floors) for a protocol, where one was measured.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from gancli.errors import GancliError
from gancli.metrics.caveats import PARZEN_CAVEAT

REAL_FEATURES = "real_features"
FAKE_FEATURES = "fake_features"
FAKE_LOGITS = "fake_logits"
REAL_SAMPLES = "real_samples"
FAKE_SAMPLES = "fake_samples"
VALIDATION_SAMPLES = "validation_samples"
MODE_CENTERS = "mode_centers"
MODE_STD = "mode_std"
FAKE_CLASSES = "fake_classes"
NUM_CLASSES = "num_classes"
REAL_CLASS_FEATURES = "real_class_features"
REAL_CLASSES = "real_classes"


@dataclass(frozen=True)
class Metric:
    name: str
    version: str  # bump when a change of formula or default would change reported numbers
    needs: frozenset[str]
    summary: str
    compute_fn: Callable[..., Any]
    caveat: str | None = None
    sensitive_to: str = ""

    def compute(self, inputs: Mapping[str, Any], **options: Any) -> dict[str, float]:
        """Named float results; `options` are the metric's keyword arguments (seed, k, splits, ...)."""
        return self.compute_with_parameters(inputs, **options)[0]

    def compute_with_parameters(self, inputs: Mapping[str, Any], **options: Any) -> tuple[dict[str, float], dict[str, Any]]:
        """Named float results and the effective parameters they were computed with."""
        missing = sorted(self.needs - set(inputs))
        if missing:
            raise ValueError(f"metric {self.name!r} needs {', '.join(missing)}")
        outcome = self.compute_fn(inputs, **options)
        if isinstance(outcome, tuple):
            return outcome
        return outcome, dict(options)

    def floor(self, key: str, *, extractor_sha256: str, reference_pixels_sha256: str, count: int):
        """The measured real-vs-real floor of result `key` (e.g. "fid") under this protocol, or None."""
        from gancli.metrics.floors import find_floor

        return find_floor(key, extractor_sha256=extractor_sha256, reference_pixels_sha256=reference_pixels_sha256, count=count)


METRICS: dict[str, Metric] = {}


def register_metric(name: str, *, version: str, needs, summary: str, caveat: str | None = None, sensitive_to: str = ""):
    """Decorator registering `fn(inputs, **options) -> dict[str, float]` (or `(dict, parameters)`) under `name`."""

    def decorate(fn: Callable[..., Any]):
        if name in METRICS:
            raise ValueError(f"metric {name!r} is already registered")
        METRICS[name] = Metric(name, version, frozenset(needs), summary, fn, caveat, sensitive_to)
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
    sensitive_to=(
        "any shift of the feature mean or covariance, so quality and diversity together; biased upward at small "
        "N (compare only at equal N)"
    ),
)
def _fid(inputs, **options):
    from gancli.metrics.frechet import frechet_distance

    return {"fid": frechet_distance(inputs[REAL_FEATURES], inputs[FAKE_FEATURES], **options)}, {"covariance": "unbiased (N − 1)"}


@register_metric(
    # version 2: the subset draws follow --seed (they were fixed at 2020)
    "kid", version="2", needs={REAL_FEATURES, FAKE_FEATURES},
    summary="Kernel distance: unbiased MMD² with a cubic polynomial kernel, 100 subsets of up to 1000",
    sensitive_to="the same differences as FID, without FID's small-N bias; noisy when the subsets are small",
)
def _kid(inputs, *, seed: int = 2020, **options):
    from gancli.metrics.kid import kernel_inception_distance

    real, fake = _features(inputs[REAL_FEATURES]), inputs[FAKE_FEATURES]
    result = kernel_inception_distance(real, fake, seed=seed, **options)
    parameters = {
        "subsets": result.subsets, "subset_size": result.subset_size, "seed": seed, "kernel": "(xᵀy / d + 1)³",
        "subsets_are_full_sets": result.subset_size == len(real) == len(fake),
    }
    return {"kid_mean": result.mean, "kid_std": result.std}, parameters


@register_metric(
    # version 2: the split shuffle follows --seed (it was fixed at 2020)
    "is", version="2", needs={FAKE_LOGITS},
    summary="Inception Score exp(E KL(p(y|x) ‖ p(y))) over 10 splits, from generated-image logits",
    sensitive_to=(
        "confident and varied class predictions of the measured images alone; blind to the real data, so it "
        "cannot see damage that keeps the classifier confident"
    ),
)
def _inception_score(inputs, *, seed: int = 2020, splits: int = 10, **options):
    from gancli.metrics.inception_score import inception_score

    result = inception_score(inputs[FAKE_LOGITS], seed=seed, splits=splits, **options)
    parameters = {"splits": result.splits, "seed": seed, "shuffled": options.get("shuffle", True)}
    return {"is_mean": result.mean, "is_std": result.std}, parameters


@register_metric(
    "pr", version="1", needs={REAL_FEATURES, FAKE_FEATURES},
    summary="Improved precision and recall (k-NN manifolds, k = 3)",
    sensitive_to=(
        "precision: measured samples outside the real manifold (quality); recall: real samples outside the "
        "measured manifold (diversity); both to outliers, which inflate a k-NN ball"
    ),
)
def _precision_recall(inputs, **options):
    from gancli.metrics.manifold import precision_recall

    result = precision_recall(_features(inputs[REAL_FEATURES]), inputs[FAKE_FEATURES], **options)
    return {"precision": result.precision, "recall": result.recall}, {"k": result.k, "membership": "distance <= k-NN radius"}


@register_metric(
    "dc", version="1", needs={REAL_FEATURES, FAKE_FEATURES},
    summary="Density and coverage (real-side k-NN balls, k = 5)",
    sensitive_to=(
        "density: measured samples crowding near real ones (quality); coverage: the share of real neighbourhoods "
        "reached (diversity); robust to outliers among the measured samples"
    ),
)
def _density_coverage(inputs, **options):
    from gancli.metrics.manifold import density_coverage

    result = density_coverage(_features(inputs[REAL_FEATURES]), inputs[FAKE_FEATURES], **options)
    return {"density": result.density, "coverage": result.coverage}, {"k": result.k, "membership": "distance < k-NN radius"}


@register_metric(
    "parzen", version="1", needs={REAL_SAMPLES, FAKE_SAMPLES},
    summary="Parzen-window log-likelihood of real samples under a Gaussian KDE on generated ones",
    caveat=PARZEN_CAVEAT,
    sensitive_to="how close every real sample lies to some measured one, in raw pixel (or point) space",
)
def _parzen(inputs, *, seed: int = 0, **options):
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
    parameters = {
        "seed": seed, "sigma_grid": [min(result.sigmas), max(result.sigmas), len(result.sigmas)],
        "sigma_at_grid_edge": result.sigma_at_grid_edge,
        "bandwidth_chosen_on": "the validation samples" if inputs.get(VALIDATION_SAMPLES) is not None else "a seeded half of the real samples",
    }
    return {"parzen_ll_mean": result.mean, "parzen_ll_sem": result.standard_error, "parzen_sigma": result.sigma}, parameters


@register_metric(
    "modes", version="1", needs={FAKE_SAMPLES, MODE_CENTERS, MODE_STD},
    summary="Modes captured, high-quality share and reverse KL on a 2-D Gaussian mixture (VEEGAN/PacGAN protocol)",
    sensitive_to="missing mixture components (modes) and samples between them",
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


@register_metric(
    "class-acc", version="1", needs={FAKE_LOGITS, FAKE_CLASSES, NUM_CLASSES},
    summary="Class accuracy: the share of conditional samples the extractor's classifier assigns to the class they were made for",
    sensitive_to=(
        "samples that do not look like their class (wrong or ambiguous class content); blind to diversity within "
        "a class, and capped by the classifier's own accuracy on real examples"
    ),
)
def _class_accuracy(inputs, **options):
    from gancli.metrics.classwise import class_accuracy

    count = int(inputs[NUM_CLASSES])
    result = class_accuracy(inputs[FAKE_LOGITS], inputs[FAKE_CLASSES], count)
    values = {"class_acc": result.accuracy, **{f"class_acc_{k}": value for k, value in enumerate(result.per_class)}}
    parameters = {
        "rule": f"argmax of the extractor's {count} class logits equals the class the sample was generated for",
        "classes": count, "per_class_counts": result.counts,
    }
    return values, parameters


@register_metric(
    "intra-fid", version="1", needs={REAL_CLASS_FEATURES, REAL_CLASSES, FAKE_FEATURES, FAKE_CLASSES, NUM_CLASSES},
    summary="Intra-FID: FID of each class (its samples vs real examples of that class), averaged over the classes",
    caveat="intra-FID compares N/K samples per class: each class's FID carries the small-N bias of FID at N/K",
    sensitive_to=(
        "what FID sees, within each class: a class drawn from the wrong class, or with too little variety, raises "
        "its own FID even when the overall mixture of classes looks right"
    ),
)
def _intra_fid(inputs, **options):
    from gancli.metrics.classwise import intra_fid

    count = int(inputs[NUM_CLASSES])
    result = intra_fid(inputs[REAL_CLASS_FEATURES], inputs[REAL_CLASSES], inputs[FAKE_FEATURES], inputs[FAKE_CLASSES], count)
    values = {"intra_fid": result.mean, **{f"intra_fid_{k}": value for k, value in enumerate(result.per_class)}}
    parameters = {
        "average": f"unweighted mean over the {count} classes", "covariance": "unbiased (N − 1)", "classes": count,
        "per_class_counts": {"measured": result.measured_counts, "reference": result.reference_counts},
    }
    return values, parameters


def _features(value):
    from gancli.metrics.frechet import FeatureStats

    if isinstance(value, FeatureStats):
        raise ValueError("this metric needs the real features themselves, not only their mean and covariance")
    return value
