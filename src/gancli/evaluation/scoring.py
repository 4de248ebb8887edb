"""Computing the chosen metrics: the options `--seed` sets, the parameters each metric really used, the
labels that say N, split and feature space ("FID-10k vs test (fmnist-cnn 544244f0)"), the measured
real-vs-real floor where one applies, and the caveats the parameters call for."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Optional

from gancli.metrics.floors import format_count
from gancli.metrics.registry import FAKE_CLASSES, FAKE_FEATURES, FAKE_LOGITS, REAL_CLASS_FEATURES, REAL_FEATURES, Metric

SEEDED_METRICS = ("kid", "is", "parzen")  # --seed reaches their subset draws, split shuffles, bandwidth halves
FEATURE_LABELS = {"fid": "FID", "kid_mean": "KID", "is_mean": "IS"}
PLAIN_LABELS = {
    "parzen_ll_mean": "Parzen log-likelihood (nats)",
    "parzen_sigma": "Parzen bandwidth σ (validation-chosen)",
    "modes_captured": "modes captured",
    "high_quality_share": "high-quality share",
    "reverse_kl": "reverse KL (nats)",
    "semi_supervised_accuracy": "D classification accuracy",
    "semi_supervised_accuracy_polyak": "D classification accuracy (Polyak-averaged D)",
    "probe_accuracy": "linear probe accuracy (D features)",
}
FEATURE_INPUTS = frozenset({REAL_FEATURES, FAKE_FEATURES, FAKE_LOGITS, REAL_CLASS_FEATURES})
MANIFOLD_PAPER_FEATURES = "VGG-16 fc2 (4096-d) in Kynkäänniemi et al. 2019 and Naeem et al. 2020"


@dataclass
class Scores:
    results: dict[str, float] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    protocol: dict[str, dict] = field(default_factory=dict)  # per metric: version, summary, parameters, ...
    floors: dict[str, dict] = field(default_factory=dict)
    caveats: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)


def score(
    chosen: list[Metric], inputs: dict, *, seed: int, kind: str, measured_count: int, reference_count: int,
    reference_split: str, extractor=None, reference_pixels_sha256: Optional[str] = None, class_names=(),
    say=lambda message: None,
) -> Scores:
    """Compute `chosen` on `inputs`; `class_names` name the classes in the labels of class-acc and intra-fid."""
    scores = Scores()
    tag = f"{extractor.name} {extractor.sha256[:8]}" if extractor is not None else ""
    for metric in chosen:
        say(f"computing {metric.name}")
        options = {"seed": seed} if metric.name in SEEDED_METRICS else {}
        clock = time.perf_counter()
        values, parameters = metric.compute_with_parameters(_inputs_for(metric, inputs), **options)
        scores.timings_s[f"metric_{metric.name}_s"] = time.perf_counter() - clock
        parameters = {**parameters, **_context(metric, kind, extractor)}
        scores.protocol[metric.name] = {
            "version": metric.version, "summary": metric.summary, "sensitive_to": metric.sensitive_to,
            "options": options, "parameters": parameters,
        }
        uses_features = bool(metric.needs & FEATURE_INPUTS)
        for key, value in values.items():
            scores.results[key] = float(value)
            if FAKE_CLASSES in metric.needs:
                scores.labels[key] = class_label(key, metric, parameters, tag, measured_count, reference_split, class_names)
            elif uses_features:
                scores.labels[key] = label(key, metric, tag, measured_count, reference_count, reference_split)
            else:
                scores.labels[key] = PLAIN_LABELS.get(key, key.replace("_", " "))
            floor = None
            if uses_features and reference_pixels_sha256 and measured_count == reference_count:
                floor = metric.floor(key, extractor_sha256=extractor.sha256, reference_pixels_sha256=reference_pixels_sha256, count=measured_count)
            if floor is not None:
                scores.floors[key] = {"value": floor.value, "count": floor.count, "seeds": floor.seeds, "measured": floor.where,
                                      "text": floor.describe()}
        if metric.caveat:
            scores.caveats.append(metric.caveat)
        if parameters.get("subsets_are_full_sets"):
            scores.caveats.append(
                f"KID: subsets of {parameters['subset_size']} from {measured_count} samples per side are the whole sets, "
                "so every subset gives the same value and its std (0) says nothing; measure more samples than the subset size"
            )
    return scores


def label(key: str, metric: Metric, tag: str, measured_count: int, reference_count: int, reference_split: str) -> str:
    """e.g. "FID-10k vs test (fmnist-cnn 544244f0)"; IS scores the measured images alone: "IS-10k (...)"."""
    base = FEATURE_LABELS.get(key) or key.replace("_", " ")
    size = format_count(measured_count)
    if FAKE_LOGITS in metric.needs and REAL_FEATURES not in metric.needs:
        text = f"{base}-{size}"
    else:
        split = "all data" if reference_split == "whole" else reference_split  # a source without splits
        against = split if reference_count == measured_count else f"{split}-{format_count(reference_count)}"
        text = f"{base}-{size} vs {against}"
    return f"{text} ({tag})" if tag else text


def class_label(key: str, metric: Metric, parameters: dict, tag: str, measured_count: int, reference_split: str,
                class_names) -> str:
    """Labels of the class metrics, with N per class and the split:
    "class accuracy-2k, 200 per class (…)", "class accuracy of class 3 Dress-200 (…)",
    "intra-FID-2k vs test, 10 classes × 200 (…)", "FID of class 3 Dress-200 vs test-200 (…)"."""
    split = "all data" if reference_split == "whole" else reference_split
    counts = parameters["per_class_counts"]
    measured = counts["measured"] if isinstance(counts, dict) else counts
    reference = counts["reference"] if isinstance(counts, dict) else None
    prefix = "class_acc" if metric.name == "class-acc" else "intra_fid"
    if key == prefix:
        if prefix == "class_acc":
            text = f"class accuracy-{format_count(measured_count)}, {_per_class(measured)} per class"
        else:
            per = _per_class(measured) if reference == measured else f"{_per_class(measured)} vs {_per_class(reference)}"
            text = f"intra-FID-{format_count(measured_count)} vs {split}, {len(measured)} classes × {per}"
    else:
        k = int(key[len(prefix) + 1:])
        name = class_names[k] if k < len(class_names) else str(k)
        which = f"class {k} {name}" if name != str(k) else f"class {k}"
        if prefix == "class_acc":
            text = f"class accuracy of {which}-{measured[k]}"
        else:
            text = f"FID of {which}-{measured[k]} vs {split}-{reference[k]}"
    return f"{text} ({tag})" if tag else text


def _per_class(counts) -> str:
    low, high = min(counts), max(counts)
    return str(low) if low == high else f"{low}–{high}"


def _context(metric: Metric, kind: str, extractor) -> dict[str, Any]:
    """Parameters the metric cannot know itself: the feature space and, for Parzen, the pixel scale."""
    found: dict[str, Any] = {}
    if extractor is not None and metric.needs & FEATURE_INPUTS:
        on_logits = FAKE_LOGITS in metric.needs and FAKE_FEATURES not in metric.needs
        found["features"] = f"{extractor.name} ({'logits' if on_logits else f'{extractor.feature_dim}-d features'})"
        if metric.name in ("pr", "dc"):
            found["features_in_the_papers"] = MANIFOLD_PAPER_FEATURES
    if metric.name == "parzen":
        found["scale"] = (
            "pixels in [-1, 1], flattened (the GAN paper used [0, 1]: log-likelihoods here are d·log 2 lower)"
            if kind == "image" else "the data's own units"
        )
    return found


def _inputs_for(metric: Metric, inputs: dict) -> dict:
    # FID needs only the reference mean and covariance; the cache has them in float64 already
    if metric.name == "fid" and "_real_stats" in inputs:
        return {**inputs, REAL_FEATURES: inputs["_real_stats"]}
    return inputs
