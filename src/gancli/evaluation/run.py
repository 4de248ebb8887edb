"""`evaluate()`: a checkpoint's samples (or a dataset's examples) against reference data, every number with
the protocol that produced it.

Order of work: every argument, file and metric is checked first (a user error costs no computation and
prints nothing but its one line), then samples are generated, features extracted (the reference side
through the cache), metrics computed, and the discriminator measured as a classifier where it is one.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from torch import Tensor

from gancli.errors import GancliError
from gancli.evaluation.features import describe_extractor, open_extractor, reference_features, reference_pixels
from gancli.evaluation.inputs import (
    REFERENCE_SUBSET_SEED,
    describe_subset,
    is_checkpoint,
    labelled_examples,
    labelled_train_test,
    overlaps,
    pixels_sha256,
    subset_indices,
    take,
)
from gancli.evaluation.report import EvalReport
from gancli.evaluation.scoring import PLAIN_LABELS, score
from gancli.metrics.registry import (
    FAKE_FEATURES,
    FAKE_LOGITS,
    FAKE_SAMPLES,
    MODE_CENTERS,
    MODE_STD,
    REAL_FEATURES,
    REAL_SAMPLES,
    Metric,
    get_metric,
)

DEFAULT_IMAGE_SAMPLES = 10_000
DEFAULT_POINT_SAMPLES = 2_500  # the VEEGAN / PacGAN mode-coverage protocol
DEFAULT_IMAGE_METRICS = ("fid", "kid", "pr", "dc", "is")
FEATURE_INPUTS = frozenset({REAL_FEATURES, FAKE_FEATURES, FAKE_LOGITS})
PROVIDED_INPUTS = FEATURE_INPUTS | {REAL_SAMPLES, FAKE_SAMPLES, MODE_CENTERS, MODE_STD}
GENERATION_CHUNK = 1000
DEFAULT_PROBE_TRAIN = 10_000


@dataclass
class _Measured:
    """The side being measured: a checkpoint's generator or a dataset's examples."""

    kind: str  # "checkpoint" or "data"
    spec: Any  # DataSpec of what it produces
    default_reference: Optional[str]
    checkpoint: Any = None
    data: Any = None
    split: Optional[str] = None
    name: str = ""
    ema: Optional[bool] = None  # as asked: None means the EMA generator when the checkpoint has one
    identity: Optional[dict] = None  # a data source's identity (gancli.data.sources.resolve_data)
    trained_on: Optional[dict] = None  # a checkpoint's training data, located (gancli.data.sources.locate_source)


@dataclass
class _Reference:
    source: str
    split: str
    data: Any
    identity: dict
    toy: Any = None  # gancli.data.toys.ToySpec when the data is a 2-D toy


def evaluate(
    source: str,
    *,
    data: Optional[str] = None,
    metrics: Optional[str | Sequence[str]] = None,
    num_samples: Optional[int] = None,
    split: str = "test",
    source_split: Optional[str] = None,
    seed: int = 0,
    truncation: Optional[float] = None,
    ema: Optional[bool] = None,
    extractor: Optional[str] = None,
    inception_weights: Optional[str] = None,
    use_cache: bool = True,
    cache_dir: Optional[str | Path] = None,
    probe: bool = False,
    probe_train: int = DEFAULT_PROBE_TRAIN,
    device: Optional[str] = None,
    allow_download: Optional[bool] = None,
    log: Optional[Callable[[str], None]] = None,
) -> EvalReport:
    """Measure `source` (a checkpoint, or a data source for real-vs-real floors) against `data`/`split`.

    Defaults: `data` is the checkpoint's training data (for a data source: the same source), `split` is
    "test", `source_split` (data sources only) is "train"; `num_samples` is 10,000 for images and 2,500 for
    2-D points; `metrics` are fid,kid,pr,dc,is for images (is only with an extractor that has logits) and
    modes (toys with modes), parzen for points. `extractor` is "inception" or the path of an extractor file
    written by `gancli eval train-extractor`; downloads are tried unless `allow_download=False` or
    GANCLI_OFFLINE=1. Raises GancliError for anything the user can fix.
    """
    say = log or (lambda message: None)
    started = time.perf_counter()
    _check_arguments(num_samples, truncation, split, source_split, probe_train)
    device = choose_device(device)
    measured = _open_measured(source, source_split=source_split, truncation=truncation, ema=ema, probe=probe)
    kind = measured.spec.kind
    count = num_samples or (DEFAULT_IMAGE_SAMPLES if kind == "image" else DEFAULT_POINT_SAMPLES)
    reference = _open_reference(data or measured.default_reference, split, measured)
    chosen, explicit = _choose_metrics(metrics, kind, reference)
    needs = set().union(*(metric.needs for metric in chosen)) if chosen else set()
    feature_extractor = None
    if needs & FEATURE_INPUTS:
        feature_extractor = open_extractor(extractor, inception_weights, device, allow_download)
        if not getattr(feature_extractor, "num_classes", 0):
            if explicit and any(FAKE_LOGITS in metric.needs for metric in chosen):
                raise GancliError(f"metric 'is' needs class logits; extractor {feature_extractor.name!r} has none")
            chosen = [metric for metric in chosen if FAKE_LOGITS not in metric.needs]
    elif extractor is not None or inception_weights is not None:
        raise GancliError("--extractor and --inception-weights apply to feature metrics (fid, kid, pr, dc, is); none is selected")
    discriminator = None
    if measured.checkpoint is not None and (probe or _labelled(reference.data)):
        from gancli.evaluation.discriminator import load_discriminator

        discriminator = load_discriminator(measured.checkpoint, device)
        if probe and discriminator is None:
            raise GancliError(f"{measured.checkpoint.path} holds no discriminator (D.*) weights; --probe needs a training checkpoint")
    probe_data = _probe_data(reference, measured, seed, probe_train) if probe else None

    # ---- everything is checked; the work starts here
    timings: dict[str, float] = {}
    caveats: list[str] = []
    clock = time.perf_counter()
    fake, fake_description = _measured_samples(measured, count, seed=seed, truncation=truncation, device=device, say=say)
    timings["samples_s"] = time.perf_counter() - clock
    real_count = min(count, len(reference.data))
    real_rows = subset_indices(len(reference.data), real_count, REFERENCE_SUBSET_SEED)
    real_pixels = reference_pixels(reference.data, real_rows)
    reference_description = describe_reference(reference.source, reference.data, reference.identity, real_count, real_pixels, split)
    if real_count != len(fake):
        caveats.append(f"{len(fake)} measured vs {real_count} reference samples: FID and KID depend on N; compare results only at equal N")
    caveats += _overlap_caveats(measured, reference, reference_description)

    inputs: dict[str, Any] = {}
    extractor_description = None
    if feature_extractor is not None:
        clock = time.perf_counter()
        extractor_description = describe_extractor(feature_extractor, reference.data.spec)
        caveats += extractor_description.pop("notes")
        say(f"extracting {extractor_description['name']} features of {len(fake)} measured images")
        fake_features, fake_logits = feature_extractor.features(fake)
        timings["features_s"] = time.perf_counter() - clock
        clock = time.perf_counter()
        cached = reference_features(
            feature_extractor, reference.data, reference.identity, real_rows, extractor_description, pixels=real_pixels,
            device=device, use_cache=use_cache, cache_dir=cache_dir, say=say,
        )
        timings["reference_features_s"] = time.perf_counter() - clock
        reference_description["cache"] = "off" if not use_cache else ("hit" if cached.from_cache else "miss")
        reference_description["features_computed"] = cached.provenance
        inputs.update({REAL_FEATURES: cached.features, FAKE_FEATURES: fake_features, FAKE_LOGITS: fake_logits, "_real_stats": cached.stats})
    if needs & {REAL_SAMPLES, FAKE_SAMPLES}:
        inputs[FAKE_SAMPLES] = _flat_samples(fake, kind)
        inputs[REAL_SAMPLES] = _flat_samples(real_pixels if real_pixels is not None else take(reference.data, real_rows)[0], kind)
    if reference.toy is not None and reference.toy.centers is not None:
        inputs.update({MODE_CENTERS: reference.toy.centers, MODE_STD: reference.toy.std})

    clock = time.perf_counter()
    scores = score(
        chosen, inputs, seed=seed, kind=kind, measured_count=len(fake), reference_count=real_count,
        reference_split=reference.identity["split"], extractor=feature_extractor,
        reference_pixels_sha256=reference_description.get("pixels_sha256"), say=say,
    )
    caveats += scores.caveats
    timings.update(scores.timings_s)
    timings["metrics_s"] = time.perf_counter() - clock
    results, labels = scores.results, scores.labels

    classification: dict[str, Any] = {}
    if discriminator is not None:
        clock = time.perf_counter()
        classification = _classification(discriminator, reference, probe_data, kind, device, say)
        from gancli.evaluation.discriminator import load_discriminator

        averaged = load_discriminator(measured.checkpoint, device, averaged=True)
        if averaged is not None and "semi_supervised_accuracy" in classification:
            # openai/improved-gan reports the test accuracy of the Polyak-averaged D; report both
            polyak = _classification(averaged, reference, None, kind, device, say)
            if "semi_supervised_accuracy" in polyak:
                classification["semi_supervised_accuracy_polyak"] = {
                    **polyak["semi_supervised_accuracy"], "discriminator": "Polyak average (D_ema)",
                    "decay": measured.checkpoint.config.get("train", {}).get("ema_discriminator_decay"),
                }
        for key in ("semi_supervised_accuracy", "semi_supervised_accuracy_polyak", "probe_accuracy"):
            if key in classification:
                results[key] = classification[key]["accuracy"]
                labels[key] = PLAIN_LABELS[key]
        timings["classification_s"] = time.perf_counter() - clock
    timings["total_s"] = time.perf_counter() - started

    protocol = _protocol(
        measured, fake_description, reference_description, extractor_description, scores.protocol,
        seed=seed, truncation=truncation, device=device,
    )
    return EvalReport(
        results=results, labels=labels, protocol=protocol, classification=classification, caveats=caveats,
        timings_s={key: round(value, 3) for key, value in timings.items()},
        title=_title(measured, fake_description, reference_description, extractor_description),
        floors=scores.floors,
    )


def choose_device(device: Optional[str]) -> str:
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise GancliError(f"--device {device}: no CUDA GPU is available here; use --device cpu")
    return device


def describe_reference(source: str, dataset, identity: dict, count: int, pixels: Optional[Tensor], requested_split: str) -> dict:
    """The reference side of the protocol: its identity, the subset compared and, in memory, its pixels' hash."""
    spec = dataset.spec
    identity = {key: value for key, value in identity.items() if key != "source"}
    description = {
        "source": source, **identity, "split_requested": requested_split, "count": count,
        "subset": describe_subset(len(dataset), count, REFERENCE_SUBSET_SEED),
        **({"resolution": spec.resolution, "channels": spec.channels} if spec.kind == "image" else {"dim": spec.dim}),
    }
    if pixels is not None:
        description["pixels_sha256"] = pixels_sha256(pixels)
    return description


def _overlap_caveats(measured: _Measured, reference: _Reference, description: dict) -> list[str]:
    """Say when the reference holds examples the measured side was made from, and record it in the protocol."""
    ref = reference.identity
    if measured.kind == "data":
        shared = overlaps(measured.identity, ref)
        description["overlaps_measured_data"] = shared
        return ["the measured and reference sets are drawn from the same examples, so they share examples"] if shared else []
    trained = measured.trained_on
    if trained is None:
        description["overlaps_training_data"] = None
        return []
    shared = overlaps(trained, ref)
    description["overlaps_training_data"] = shared
    if shared is None:
        return [
            f"the checkpoint names its training data {trained['source']!r}, which cannot be found from here: "
            "cannot tell whether the reference overlaps the training data"
        ]
    if not shared:
        return []
    if ref["split"] == "whole":
        return [f"{reference.source} has no train/test splits: the reference examples are the ones the model was trained on"]
    return [
        f"the reference ({reference.source}, {ref['split']} split) is the model's training data "
        f"({trained['source']}, {trained['split']} split): pass --split or --data for held-out examples"
    ]


# ---------------------------------------------------------------- checks


def _check_arguments(num_samples, truncation, split, source_split, probe_train) -> None:
    if num_samples is not None and num_samples <= 0:
        raise GancliError(f"--num-samples must be positive, got {num_samples}")
    if truncation is not None and not truncation > 0:
        raise GancliError(f"--truncation must be positive, got {truncation}")
    for flag, value in (("--split", split), ("--split-source", source_split)):
        if value is not None and value not in ("train", "test"):
            raise GancliError(f"{flag} must be train or test, got {value!r}")
    if probe_train <= 0:
        raise GancliError(f"--probe-train must be positive, got {probe_train}")


def _open_measured(source: str, *, source_split, truncation, ema, probe) -> _Measured:
    if is_checkpoint(source):
        from gancli import checkpoint as ckpt_io
        from gancli.data.sources import locate_source

        ckpt = ckpt_io.read(source)
        if source_split is not None:
            raise GancliError("--split-source picks the split of a data SOURCE; a checkpoint is measured by its samples")
        data_config = ckpt.config.get("data", {})
        trained_on = str(data_config.get("source") or "") or None
        ckpt_io.generator_prefix(ckpt, ema)  # --ema on a file without EMA weights fails now, not after loading
        located = locate_source(trained_on, str(data_config.get("split") or "train")) if trained_on else None
        return _Measured("checkpoint", ckpt.spec, trained_on, checkpoint=ckpt, name=str(ckpt.path), ema=ema, trained_on=located)
    for flag, value in (("--truncation", truncation), ("--ema/--no-ema", ema), ("--probe", probe or None)):
        if value is not None:
            raise GancliError(f"{flag} applies to checkpoints; {source!r} is data (real-vs-real)")
    from gancli.data.sources import resolve_data

    split = source_split or "train"
    resolved = resolve_data(source, split=split)
    return _Measured("data", resolved.dataset.spec, source, data=resolved.dataset, split=split, name=source, identity=resolved.identity)


def _open_reference(source: Optional[str], split: str, measured: _Measured) -> _Reference:
    from gancli.data import toys
    from gancli.data.sources import resolve_data

    if not source:
        raise GancliError(f"{measured.name} does not name its training data; pass --data (the reference data)")
    spec = measured.spec
    if spec.kind == "image":
        resolved = resolve_data(source, resolution=spec.resolution, channels=spec.channels, split=split)
    else:
        resolved = resolve_data(source, split=split)
    dataset = resolved.dataset
    what = "the checkpoint" if measured.kind == "checkpoint" else repr(measured.name)
    if dataset.spec.kind != spec.kind:
        made = "images" if spec.kind == "image" else f"{spec.dim}-D points"
        held = "images" if dataset.spec.kind == "image" else f"{dataset.spec.dim}-D points"
        raise GancliError(f"{what} makes {made} but --data {source} holds {held}; pass matching reference data")
    if spec.kind == "points" and dataset.spec.dim != spec.dim:
        raise GancliError(f"{what} makes {spec.dim}-D points but --data {source} holds {dataset.spec.dim}-D points")
    if len(dataset) < 2:
        raise GancliError(f"--data {source} ({split}) holds {len(dataset)} example(s); metrics need at least 2")
    toy = toys.TOYS.get(source) if spec.kind == "points" else None
    return _Reference(source, split, dataset, resolved.identity, toy=toy)


def _choose_metrics(requested, kind: str, reference: _Reference) -> tuple[list[Metric], bool]:
    explicit = requested is not None
    if requested is None:
        if kind == "image":
            names = list(DEFAULT_IMAGE_METRICS)
        else:
            has_modes = reference.toy is not None and reference.toy.centers is not None
            names = (["modes"] if has_modes else []) + ["parzen"]
    else:
        parts = requested.split(",") if isinstance(requested, str) else list(requested)
        names = list(dict.fromkeys(part.strip().lower() for part in parts if part.strip()))
        if not names:
            raise GancliError("--metrics is empty; name some, e.g. --metrics fid,kid")
    chosen = [get_metric(name) for name in names]
    for metric in chosen:
        unknown = sorted(metric.needs - PROVIDED_INPUTS)
        if unknown:
            raise GancliError(f"metric {metric.name!r} needs {', '.join(unknown)}, which gancli eval does not provide")
        if metric.needs & FEATURE_INPUTS and kind != "image":
            raise GancliError(
                f"metric {metric.name!r} compares image features; {reference.source} holds "
                f"{reference.data.spec.dim}-D points: use --metrics modes,parzen"
            )
        if metric.needs & {MODE_CENTERS, MODE_STD}:
            if kind != "points":
                raise GancliError(f"metric {metric.name!r} counts the modes of 2-D point mixtures; {reference.source} holds images")
            if reference.toy is None or reference.toy.centers is None:
                raise GancliError(
                    f"metric {metric.name!r} needs a toy mixture with known modes (ring8, grid25) as --data; "
                    f"{reference.source} has none"
                )
    return chosen, explicit


def _labelled(dataset) -> bool:
    from gancli.data.images import TensorData

    if isinstance(dataset, TensorData):
        return dataset.labels is not None and bool((dataset.labels >= 0).any())
    return bool(getattr(dataset, "has_labels", False))


def _probe_data(reference: _Reference, measured: _Measured, seed: int, probe_train: int) -> dict:
    """Labelled train examples (a seeded subset of `probe_train`) and the reference split's labelled examples."""
    spec = measured.spec
    resolution, channels = (spec.resolution, spec.channels) if spec.kind == "image" else (None, None)
    train_values, train_labels, test_values, test_labels, how = labelled_train_test(
        reference.source, reference.split, resolution=resolution, channels=channels, seed=seed
    )
    rows = subset_indices(len(train_labels), probe_train, seed)
    return {
        "train": (train_values[rows], train_labels[rows]), "test": (test_values, test_labels),
        "description": {
            "data": reference.source, "train": f"{describe_subset(len(train_labels), len(rows), seed)} labelled train examples",
            "test": how["test"],
        },
    }


# ---------------------------------------------------------------- samples and features


def _measured_samples(measured: _Measured, count: int, *, seed, truncation, device, say) -> tuple[Tensor, dict]:
    """uint8 images (N, C, H, W) or float points (N, D) of the measured side, and how they were made."""
    if measured.kind == "data":
        total = len(measured.data)
        rows = subset_indices(total, count, seed)
        say(f"taking {len(rows)} examples of {measured.name} ({measured.split})")
        values, _ = take(measured.data, rows)
        identity = {key: value for key, value in measured.identity.items() if key != "source"}
        return values, {"source": measured.name, **identity, "count": len(rows), "subset": describe_subset(total, len(rows), seed)}
    import gancli
    from gancli import checkpoint as ckpt_io
    from gancli.data.images import to_uint8
    from gancli.metrics._files import sha256_of_file
    from gancli.sampling import latents

    ckpt = measured.checkpoint
    pipe = gancli.load(ckpt.path, device=device, ema=measured.ema)
    say(f"generating {count} samples from {ckpt.path} (step {ckpt.step}, {'EMA' if pipe.ema else 'raw'} generator)")
    if measured.spec.kind == "points":
        samples = pipe.sample(count, seed=seed, truncation=truncation)
    else:
        # what `gancli sample -n N --seed S` draws, in chunks turned into uint8 at once (10k RGB images as
        # floats would take half a gigabyte)
        w_space = getattr(pipe.generator, "truncation_space", "z") == "w"
        z = latents(count, pipe.z_dim, seed=seed, truncation=None if w_space else truncation)
        y = pipe.labels(count, None, seed)
        chunks = []
        for start in range(0, count, GENERATION_CHUNK):
            rows = slice(start, start + GENERATION_CHUNK)
            chunks.append(to_uint8(pipe.generate(z[rows], y[rows] if y is not None else None, truncation=truncation)))
        samples = torch.cat(chunks)
    return samples, {
        "checkpoint": str(ckpt.path.resolve()), "checkpoint_sha256": sha256_of_file(ckpt.path), "family": ckpt.family, "plugin": ckpt.plugin, "step": ckpt.step,
        "images_seen": ckpt.images_seen, "generator": ckpt_io.generator_prefix(ckpt, measured.ema).rstrip("."),
        "count": count, "latents": f"gancli.sampling.latents(N, z_dim, seed={seed}), as `gancli sample -n N --seed {seed}` draws",
        "labels": (f"conditional on {pipe.num_classes} classes: sample i gets class i mod {pipe.num_classes} (balanced)"
                   if pipe.num_classes else "unconditional"),
        "trained_on": measured.trained_on,
    }


def _flat_samples(values: Tensor, kind: str) -> Tensor:
    from gancli.data.images import to_float

    return (to_float(values) if kind == "image" else values.float()).flatten(1)


# ---------------------------------------------------------------- the discriminator as a classifier


def _classification(loaded, reference: _Reference, probe_data: Optional[dict], kind: str, device, say) -> dict:
    from gancli.evaluation.discriminator import discriminator_accuracy, linear_probe

    D, record = loaded
    found: dict[str, Any] = {}
    if _labelled(reference.data):
        values, labels = labelled_examples(reference.data, f"{reference.source} ({reference.split})")
        num_classes = int(labels.max()) + 1
        accuracy = discriminator_accuracy(D, record, values, labels, kind, num_classes, device)
        if accuracy is not None:
            say(f"D is a {num_classes}-class classifier: measured its accuracy on {len(labels)} labelled examples")
            found["semi_supervised_accuracy"] = {
                "accuracy": accuracy, "data": reference.source, "split": reference.split, "count": len(labels),
                "rule": "argmax of D's K class logits",
            }
    if probe_data is not None:
        (train_values, train_labels), (test_values, test_labels) = probe_data["train"], probe_data["test"]
        say(f"linear probe: D features of {len(train_labels)} train and {len(test_labels)} test examples")
        found["probe_accuracy"] = {
            **linear_probe(D, record, train_values, train_labels, test_values, test_labels, kind, device=device),
            **probe_data["description"],
        }
    return found


# ---------------------------------------------------------------- protocol


def _protocol(measured, fake_description, reference_description, extractor_description, metric_protocol, *, seed, truncation, device) -> dict:
    import gancli
    from gancli.metrics.extractors import float32_precision_note

    is_checkpoint_source = measured.kind == "checkpoint"
    return {
        "gancli_version": gancli.__version__,
        "torch_version": torch.__version__,
        "source": {"kind": measured.kind, **fake_description},
        "num_samples": fake_description["count"],
        "seed": seed,
        "ema": (fake_description["generator"] == "G_ema") if is_checkpoint_source else None,
        "truncation": truncation,
        "reference": reference_description,
        "extractor": extractor_description,
        "metric_versions": {name: entry["version"] for name, entry in metric_protocol.items()},
        "metrics": metric_protocol,
        "device": str(device),
        "float32": float32_precision_note(device),
    }


def _title(measured, fake_description, reference_description, extractor_description) -> str:
    if measured.kind == "checkpoint":
        generator = "EMA" if fake_description["generator"] == "G_ema" else "raw G"
        left = f"{Path(fake_description['checkpoint']).name} (step {fake_description['step']}, {generator}, {fake_description['count']} samples)"
    else:
        left = f"{measured.name} {fake_description['split']} ({fake_description['count']})"
    right = f"{reference_description['source']} {reference_description['split']} ({reference_description['count']})"
    features = ""
    if extractor_description is not None:
        features = f"; features: {extractor_description['name']} {extractor_description['sha256'][:8]}"
    return f"{left} vs {right}{features}"
