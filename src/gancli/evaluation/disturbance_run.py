"""`gancli eval DATA --disturb ...`: the FID paper's disturbance experiment (Heusel et al. 2017, appendix) on
a real dataset. A seeded subset of DATA's train split is disturbed at each level and measured against the
clean reference split (the test split by default) with every chosen feature metric; level 0 is the clean
subset, so its row is also the real-vs-real floor at this N.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from gancli.errors import GancliError
from gancli.evaluation.disturbances import DISTURBANCES, disturb, parse_disturbances, parse_levels, pixel_damage, rendered_digits
from gancli.evaluation.features import describe_extractor, open_extractor, reference_features, reference_pixels
from gancli.evaluation.inputs import REFERENCE_SUBSET_SEED, describe_subset, is_checkpoint, overlaps, subset_indices, take
from gancli.evaluation.report import format_number
from gancli.evaluation.scoring import score
from gancli.metrics.registry import FAKE_FEATURES, FAKE_LOGITS, REAL_FEATURES, get_metric

REPORT_FORMAT = "gancli-disturbance/1"
DEFAULT_SAMPLES = 5_000
DEFAULT_METRICS = ("fid", "kid", "pr", "dc", "is")
FOREIGN_IMAGES = 1_000  # rendered digits available to --disturb mix without --mix-with
EXAMPLES = 6  # images per level in the picture's strips
SHOWN = ("fid", "kid_mean", "is_mean", "precision", "recall", "density", "coverage")


@dataclass
class DisturbanceReport:
    levels: list[float]
    rows: dict[str, list[dict[str, float]]]  # disturbance -> one row per level: level, parameter, damage, metrics
    labels: dict[str, str]
    protocol: dict[str, Any]
    caveats: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    title: str = ""
    examples: dict[str, list[Any]] = field(default_factory=dict)  # disturbance -> uint8 example batch per level

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT, "title": self.title, "levels": self.levels, "results": self.rows,
            "labels": self.labels, "protocol": self.protocol, "caveats": self.caveats, "timings_s": self.timings_s,
        }

    def to_json(self) -> str:
        from gancli.evaluation.report import _finite_or_null

        return json.dumps(_finite_or_null(self.to_dict()), indent=2, ensure_ascii=False) + "\n"

    def write_json(self, path: str | Path) -> Path:
        from gancli.checkpoint import atomic_write_text

        target = Path(path).expanduser()
        atomic_write_text(target, self.to_json())
        return target

    def write_png(self, path: str | Path) -> Path:
        from gancli.evaluation.charts import disturbance_figure

        return disturbance_figure(self, Path(path).expanduser())

    def shown_keys(self) -> list[str]:
        return [key for key in SHOWN if key in self.labels]

    def plain_text(self) -> str:
        """One table per disturbance: a row per level, a column per number."""
        keys = self.shown_keys()
        lines = [self.title] if self.title else []
        for name, rows in self.rows.items():
            lines.append("")
            lines.append(f"{name} ({DISTURBANCES[name].parameter})")
            header = ["level", "parameter", "damage"] + [self.labels[key].split(" (")[0] for key in keys]
            table = [header] + [
                [format_number(row["level"]), format_number(row["parameter"]), f"{row['pixel_damage']:.4f}"]
                + [format_number(row[key]) for key in keys]
                for row in rows
            ]
            widths = [max(len(line[column]) for line in table) for column in range(len(header))]
            lines += ["  ".join(cell.rjust(width) for cell, width in zip(line, widths)) for line in table]
        lines += [f"note: {caveat}" for caveat in self.caveats]
        return "\n".join(lines) + "\n"


def disturbance_experiment(
    source: str,
    *,
    disturbances: str | Sequence[str],
    levels: str | Sequence[float] = "0,0.25,0.5,0.75,1",
    data: Optional[str] = None,
    split: str = "test",
    source_split: Optional[str] = None,
    num_samples: Optional[int] = None,
    metrics: Optional[str | Sequence[str]] = None,
    seed: int = 0,
    extractor: Optional[str] = None,
    inception_weights: Optional[str] = None,
    mix_with: Optional[str] = None,
    use_cache: bool = True,
    cache_dir: Optional[str | Path] = None,
    device: Optional[str] = None,
    allow_download: Optional[bool] = None,
    log: Optional[Callable[[str], None]] = None,
) -> DisturbanceReport:
    """Measure disturbed copies of `source`'s examples against its clean reference split at each level.

    `disturbances` is "all" or names from gancli.evaluation.disturbances.DISTURBANCES ("noise,blur"), `levels`
    numbers in [0, 1] (1 = the paper's strongest setting; 0 is always measured). `mix` replaces images by
    ones from `mix_with` (any --data source), by default by digits rendered with Pillow's font.
    """
    from gancli.data.sources import resolve_data
    from gancli.evaluation.plan import choose_device
    from gancli.evaluation.protocol import describe_reference

    say = log or (lambda message: None)
    started = time.perf_counter()
    names = parse_disturbances(disturbances) if isinstance(disturbances, str) else parse_disturbances(",".join(disturbances))
    chosen_levels = parse_levels(levels) if isinstance(levels, str) else parse_levels(",".join(map(str, levels)))
    if is_checkpoint(source):
        raise GancliError("--disturb measures disturbed real images: SOURCE must be data (e.g. fashion-mnist), not a checkpoint")
    if num_samples is not None and num_samples <= 1:
        raise GancliError(f"--num-samples must be at least 2, got {num_samples}")
    if source_split not in (None, "train", "test") or split not in ("train", "test"):
        raise GancliError("--split and --split-source must be train or test")
    if mix_with is not None and "mix" not in names:
        raise GancliError("--mix-with gives the foreign images of --disturb mix; mix is not selected")
    device = choose_device(device)
    chosen = _feature_metrics(metrics)

    measured = resolve_data(source, split=source_split or "train")
    spec = measured.dataset.spec
    if spec.kind != "image":
        raise GancliError(f"{source} holds {spec.dim}-D points; --disturb disturbs images")
    reference = resolve_data(data or source, resolution=spec.resolution, channels=spec.channels, split=split)
    foreign, foreign_description = _foreign_images(names, mix_with, spec, seed)
    feature_extractor = open_extractor(extractor, inception_weights, device, allow_download)
    if not feature_extractor.num_classes:
        chosen = [metric for metric in chosen if FAKE_LOGITS not in metric.needs]

    # ---- everything is checked; the work starts here
    count = min(num_samples or DEFAULT_SAMPLES, len(measured.dataset))
    rows = subset_indices(len(measured.dataset), count, seed)
    say(f"taking {len(rows)} examples of {source} ({measured.identity['split']})")
    clean = take(measured.dataset, rows)[0]
    real_count = min(count, len(reference.dataset))
    real_rows = subset_indices(len(reference.dataset), real_count, REFERENCE_SUBSET_SEED)
    real_pixels = reference_pixels(reference.dataset, real_rows)
    reference_description = describe_reference(data or source, reference.dataset, reference.identity, real_count, real_pixels, split)
    caveats = []
    shared = overlaps(measured.identity, reference.identity)
    reference_description["overlaps_measured_data"] = shared
    if shared:
        caveats.append("the disturbed images and the reference are drawn from the same examples: level 0 is not a held-out floor")
    extractor_description = describe_extractor(feature_extractor, spec)
    caveats += extractor_description.pop("notes")
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    cached = reference_features(
        feature_extractor, reference.dataset, reference.identity, real_rows, extractor_description, pixels=real_pixels,
        device=device, use_cache=use_cache, cache_dir=cache_dir, say=say,
    )
    reference_description["cache"] = "off" if not use_cache else ("hit" if cached.from_cache else "miss")
    reference_description["features_computed"] = cached.provenance
    timings["reference_features_s"] = time.perf_counter() - clock
    base_inputs = {REAL_FEATURES: cached.features, "_real_stats": cached.stats}

    def measure(images):
        features, logits = feature_extractor.features(images)
        return score(
            chosen, {**base_inputs, FAKE_FEATURES: features, FAKE_LOGITS: logits}, seed=seed, kind="image",
            measured_count=len(images), reference_count=real_count, reference_split=reference.identity["split"],
            extractor=feature_extractor, reference_pixels_sha256=reference_description.get("pixels_sha256"),
        )

    clock = time.perf_counter()
    say(f"level 0 (clean): measuring {len(clean)} images")
    clean_scores = measure(clean)
    caveats += clean_scores.caveats
    results: dict[str, list[dict[str, float]]] = {}
    examples: dict[str, list[Any]] = {}
    for name in names:
        results[name], examples[name] = [], []
        for level in chosen_levels:
            damaged = clean if level == 0.0 else disturb(clean, name, level, seed=seed, foreign=foreign)
            if level:
                say(f"{name} at level {level:g}: measuring {len(damaged)} images")
            scores = clean_scores if level == 0.0 else measure(damaged)
            parameter = DISTURBANCES[name].parameter_at(level)
            results[name].append({"level": level, "parameter": parameter, "pixel_damage": pixel_damage(clean, damaged), **scores.results})
            examples[name].append(damaged[:EXAMPLES])
    timings["disturbed_s"] = time.perf_counter() - clock
    timings["total_s"] = time.perf_counter() - started

    import gancli
    import torch

    from gancli.metrics.extractors import float32_precision_note

    protocol = {
        "gancli_version": gancli.__version__,
        "torch_version": torch.__version__,
        "experiment": "Heusel et al. 2017 (FID), appendix: disturbed real images against clean real ones",
        "source": {"source": source, **{k: v for k, v in measured.identity.items() if k != "source"}, "count": len(rows),
                   "subset": describe_subset(len(measured.dataset), len(rows), seed),
                   "resolution": spec.resolution, "channels": spec.channels},
        "num_samples": len(rows),
        "seed": seed,
        "reference": reference_description,
        "extractor": extractor_description,
        "levels": chosen_levels,
        "disturbances": {
            name: {"parameter": DISTURBANCES[name].parameter, "at_level_1": DISTURBANCES[name].strongest,
                   "scaling": "parameter = level × the value at level 1 (the paper's strongest setting)",
                   **({"foreign_images": foreign_description} if name == "mix" else {})}
            for name in names
        },
        "randomness": f"one draw per image from seed {seed}, shared by every level of a disturbance",
        "pixel_damage": "mean |disturbed − clean| / 255 over all pixels",
        "metric_versions": {name: entry["version"] for name, entry in clean_scores.protocol.items()},
        "metrics": clean_scores.protocol,
        "floors_at_level_0": clean_scores.floors,
        "device": str(device),
        "float32": float32_precision_note(device),
    }
    title = (
        f"{source} {measured.identity['split']} ({len(rows)}) disturbed vs {data or source} {reference.identity['split']} "
        f"({real_count}); features: {feature_extractor.name} {feature_extractor.sha256[:8]}"
    )
    return DisturbanceReport(
        levels=chosen_levels, rows=results, labels=clean_scores.labels, protocol=protocol, caveats=caveats,
        timings_s={key: round(value, 3) for key, value in timings.items()}, title=title, examples=examples,
    )


def _feature_metrics(requested):
    names = list(DEFAULT_METRICS) if requested is None else [
        part.strip().lower() for part in (requested.split(",") if isinstance(requested, str) else requested) if part.strip()
    ]
    chosen = [get_metric(name) for name in dict.fromkeys(names)]
    others = [metric.name for metric in chosen if not metric.needs <= {REAL_FEATURES, FAKE_FEATURES, FAKE_LOGITS}]
    if others or not chosen:
        raise GancliError(f"--disturb measures feature metrics (fid, kid, pr, dc, is); not {', '.join(others) or 'none'}")
    return chosen


def _foreign_images(names, mix_with: Optional[str], spec, seed: int):
    """The images --disturb mix mixes in, matched to the data's channels and resolution, and their description."""
    if "mix" not in names:
        return None, None
    if mix_with is None:
        description = f"{FOREIGN_IMAGES} digits 0–9 rendered with Pillow's built-in font (seeded sizes, offsets, angles)"
        return rendered_digits(FOREIGN_IMAGES, spec.channels, spec.resolution, seed=seed), description
    from gancli.data.sources import resolve_data

    foreign = resolve_data(mix_with, resolution=spec.resolution, channels=spec.channels, split="train")
    if foreign.dataset.spec.kind != "image":
        raise GancliError(f"--mix-with {mix_with} holds points; mix needs foreign images")
    rows = subset_indices(len(foreign.dataset), FOREIGN_IMAGES, seed)
    description = {"source": mix_with, **{k: v for k, v in foreign.identity.items() if k != "source"}, "count": len(rows)}
    return take(foreign.dataset, rows)[0], description
