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
from gancli.evaluation.inputs import (
    REFERENCE_SUBSET_SEED,
    data_identity,
    describe_subset,
    has_splits,
    is_checkpoint,
    labelled_examples,
    labelled_train_test,
    offline,
    same_examples,
    subset_indices,
    take,
)
from gancli.evaluation.report import EvalReport
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
FEATURE_LABELS = {"fid": "FID", "kid_mean": "KID", "is_mean": "IS"}
PLAIN_LABELS = {
    "parzen_ll_mean": "Parzen log-likelihood (nats)",
    "parzen_sigma": "Parzen bandwidth σ (validation-chosen)",
    "modes_captured": "modes captured",
    "high_quality_share": "high-quality share",
    "reverse_kl": "reverse KL (nats)",
    "semi_supervised_accuracy": "D classification accuracy",
    "probe_accuracy": "linear probe accuracy (D features)",
}


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
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise GancliError(f"--device {device}: no CUDA GPU is available here; use --device cpu")
    measured = _open_measured(source, source_split=source_split, truncation=truncation, ema=ema, probe=probe)
    kind = measured.spec.kind
    count = num_samples or (DEFAULT_IMAGE_SAMPLES if kind == "image" else DEFAULT_POINT_SAMPLES)
    reference = _open_reference(data or measured.default_reference, split, measured)
    chosen, explicit = _choose_metrics(metrics, kind, reference)
    needs = set().union(*(metric.needs for metric in chosen)) if chosen else set()
    feature_extractor = None
    if needs & FEATURE_INPUTS:
        feature_extractor = _open_extractor(extractor, inception_weights, device, allow_download)
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
    reference_spec = reference.data.spec
    reference_description = {
        "source": reference.source, **reference.identity, "split": reference.split, "count": real_count,
        "subset": describe_subset(len(reference.data), real_count, REFERENCE_SUBSET_SEED),
        **({"resolution": reference_spec.resolution, "channels": reference_spec.channels} if kind == "image" else {"dim": reference_spec.dim}),
    }
    if real_count != len(fake):
        caveats.append(f"{len(fake)} measured vs {real_count} reference samples: FID and KID depend on N; compare results only at equal N")
    if measured.kind == "data" and _same_data(measured, reference):
        caveats.append("the measured and reference sets are drawn from the same examples, so they share examples")
    if measured.kind == "checkpoint" and reference.source == measured.default_reference and not has_splits(reference.source):
        caveats.append(f"{reference.source} has no train/test splits: the reference examples are the ones the model was trained on")

    inputs: dict[str, Any] = {}
    extractor_description = None
    if feature_extractor is not None:
        clock = time.perf_counter()
        extractor_description = _describe_extractor(feature_extractor, reference.data.spec)
        caveats += extractor_description.pop("notes")
        say(f"extracting {extractor_description['name']} features of {len(fake)} measured images")
        fake_features, fake_logits = feature_extractor.features(fake)
        timings["features_s"] = time.perf_counter() - clock
        clock = time.perf_counter()
        cached = _reference_features(
            feature_extractor, reference, real_rows, extractor_description, use_cache=use_cache, cache_dir=cache_dir, say=say
        )
        timings["reference_features_s"] = time.perf_counter() - clock
        reference_description["cache"] = "off" if not use_cache else ("hit" if cached.from_cache else "miss")
        inputs.update({REAL_FEATURES: cached.features, FAKE_FEATURES: fake_features, FAKE_LOGITS: fake_logits, "_real_stats": cached.stats})
    if needs & {REAL_SAMPLES, FAKE_SAMPLES}:
        inputs[FAKE_SAMPLES] = _flat_samples(fake, kind)
        inputs[REAL_SAMPLES] = _flat_samples(take(reference.data, real_rows)[0], kind)
    if reference.toy is not None and reference.toy.centers is not None:
        inputs.update({MODE_CENTERS: reference.toy.centers, MODE_STD: reference.toy.std})

    clock = time.perf_counter()
    results, labels, metric_protocol = {}, {}, {}
    tag = f"{feature_extractor.name} {feature_extractor.sha256[:8]}" if feature_extractor is not None else ""
    for metric in chosen:
        say(f"computing {metric.name}")
        options = {"seed": seed} if metric.name == "parzen" else {}
        metric_clock = time.perf_counter()
        values = metric.compute(_inputs_for(metric, inputs), **options)
        timings[f"metric_{metric.name}_s"] = time.perf_counter() - metric_clock
        metric_protocol[metric.name] = {"version": metric.version, "summary": metric.summary, "options": options}
        for key, value in values.items():
            results[key] = float(value)
            labels[key] = _label(key, tag if metric.needs & FEATURE_INPUTS else "")
        if metric.caveat:
            caveats.append(metric.caveat)
    timings["metrics_s"] = time.perf_counter() - clock

    classification: dict[str, Any] = {}
    if discriminator is not None:
        clock = time.perf_counter()
        classification = _classification(discriminator, reference, probe_data, kind, device, say)
        for key in ("semi_supervised_accuracy", "probe_accuracy"):
            if key in classification:
                results[key] = classification[key]["accuracy"]
                labels[key] = _label(key, "")
        timings["classification_s"] = time.perf_counter() - clock
    timings["total_s"] = time.perf_counter() - started

    protocol = _protocol(
        measured, fake_description, reference_description, extractor_description, metric_protocol,
        seed=seed, truncation=truncation, device=device,
    )
    return EvalReport(
        results=results, labels=labels, protocol=protocol, classification=classification, caveats=caveats,
        timings_s={key: round(value, 3) for key, value in timings.items()},
        title=_title(measured, fake_description, reference_description, extractor_description),
    )


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

        ckpt = ckpt_io.read(source)
        if source_split is not None:
            raise GancliError("--split-source picks the split of a data SOURCE; a checkpoint is measured by its samples")
        trained_on = str(ckpt.config.get("data", {}).get("source") or "") or None
        ckpt_io.generator_prefix(ckpt, ema)  # --ema on a file without EMA weights fails now, not after loading
        return _Measured("checkpoint", ckpt.spec, trained_on, checkpoint=ckpt, name=str(ckpt.path), ema=ema)
    for flag, value in (("--truncation", truncation), ("--ema/--no-ema", ema), ("--probe", probe or None)):
        if value is not None:
            raise GancliError(f"{flag} applies to checkpoints; {source!r} is data (real-vs-real)")
    from gancli.data.sources import load_data

    split = source_split or "train"
    dataset = load_data(source, split=split)
    return _Measured("data", dataset.spec, source, data=dataset, split=split, name=source)


def _open_reference(source: Optional[str], split: str, measured: _Measured) -> _Reference:
    from gancli.data import toys
    from gancli.data.sources import load_data

    if not source:
        raise GancliError(f"{measured.name} does not name its training data; pass --data (the reference data)")
    spec = measured.spec
    if spec.kind == "image":
        dataset = load_data(source, resolution=spec.resolution, channels=spec.channels, split=split)
    else:
        dataset = load_data(source, split=split)
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
    return _Reference(source, split, dataset, data_identity(source), toy=toy)


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


def _open_extractor(name: Optional[str], inception_weights, device, allow_download):
    from gancli.metrics.extractors import get_extractor

    chosen = name or "inception"
    if inception_weights is not None and chosen != "inception":
        raise GancliError("--inception-weights is for --extractor inception; drop one of them")
    download = (not offline()) if allow_download is None else allow_download
    try:
        return get_extractor(chosen, inception_weights=inception_weights, device=device, allow_download=download)
    except GancliError as error:
        if name is not None:
            raise
        raise GancliError(
            f"{error}; or measure in a domain feature space instead: gancli eval train-extractor --data D "
            f"--out ext.safetensors, then --extractor ext.safetensors"
        ) from None


def _same_data(measured: _Measured, reference: _Reference) -> bool:
    """Whether both sides draw from one set of examples: same split of one source, or a source whose
    splits are the same examples (an .npz or a folder has no splits)."""
    from gancli.data.images import TensorData

    if data_identity(measured.name) != reference.identity:
        return False
    if measured.split == reference.split:
        return True
    both_in_memory = isinstance(measured.data, TensorData) and isinstance(reference.data, TensorData)
    return both_in_memory and same_examples(measured.data.values, reference.data.values)


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
        return values, {
            "source": measured.name, **data_identity(measured.name), "split": measured.split, "count": len(rows),
            "subset": describe_subset(total, len(rows), seed),
        }
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
        "count": count,
    }


def _flat_samples(values: Tensor, kind: str) -> Tensor:
    from gancli.data.images import to_float

    return (to_float(values) if kind == "image" else values.float()).flatten(1)


def _describe_extractor(extractor, spec) -> dict:
    """Name, hash and preprocessing of the feature extractor, plus notes on conversions it makes."""
    network = getattr(extractor, "network", None)
    notes = []
    if extractor.name == "inception":
        kind = "inception"
        grey = "grey repeated to RGB, " if spec.channels == 1 else ""
        preprocessing = f"{spec.channels}×{spec.resolution}² uint8 → {grey}TF1 bilinear resize to 299², (x − 128) / 128"
    else:
        kind = "domain-classifier"
        width, side = getattr(network, "channels", spec.channels), getattr(network, "resolution", spec.resolution)
        steps = []
        if spec.channels != width:
            steps.append("RGB averaged to grey" if width == 1 else "grey repeated to RGB")
            notes.append(
                f"extractor {extractor.name!r} takes {width}-channel images; the {spec.channels}-channel images were "
                f"converted ({steps[-1]})"
            )
        if spec.resolution != side:
            steps.append(f"bilinear antialiased resize to {side}²")
        preprocessing = f"{spec.channels}×{spec.resolution}² uint8 → " + ", ".join(steps + ["x / 127.5 − 1"])
        notes.append(
            f"features of {extractor.name} (sha256 {extractor.sha256[:12]}…), a domain classifier: "
            "the numbers are not comparable with Inception FID/KID/IS"
        )
    metadata = getattr(extractor, "metadata", {}) or {}
    description = {
        "name": extractor.name, "sha256": extractor.sha256, "kind": kind, "inception_comparable": kind == "inception",
        "feature_dim": int(extractor.feature_dim), "num_classes": int(extractor.num_classes),
        "preprocessing": preprocessing, "notes": notes,
    }
    for key in ("test_accuracy", "training_data"):
        if key in metadata:
            description[key] = metadata[key]
    return description


def _reference_features(extractor, reference: _Reference, rows: Tensor, description: dict, *, use_cache, cache_dir, say):
    from gancli.metrics.reference_cache import cached_reference_features

    key_fields = {
        **reference.identity, "split": reference.split, "count": len(rows),
        "subset_seed": REFERENCE_SUBSET_SEED, "extractor": extractor.name, "extractor_sha256": extractor.sha256,
        "resize": description["preprocessing"],
    }

    def compute():
        say(f"extracting {extractor.name} features of {len(rows)} reference images ({reference.source}, {reference.split})")
        features, _ = extractor.features(take(reference.data, rows)[0])
        return features

    return cached_reference_features(key_fields, compute, cache_dir=cache_dir, no_cache=not use_cache)


def _inputs_for(metric: Metric, inputs: dict) -> dict:
    # FID needs only the reference mean and covariance; the cache has them in float64 already
    if metric.name == "fid" and "_real_stats" in inputs:
        return {**inputs, REAL_FEATURES: inputs["_real_stats"]}
    return inputs


def _label(key: str, tag: str) -> str:
    base = FEATURE_LABELS.get(key) or PLAIN_LABELS.get(key) or key.replace("_", " ")
    return f"{base} ({tag})" if tag else base


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
