"""What an evaluation scores against what: the measured side (a checkpoint's generator or a dataset), the
reference data, the metrics and the extractor, all checked and opened by `prepare` before any work."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import torch

from gancli.errors import GancliError
from gancli.evaluation.classes import ClassSetup, is_labelled, prepare_classes
from gancli.evaluation.features import open_extractor
from gancli.evaluation.generation import BN_MODES, check_truncation
from gancli.evaluation.inputs import describe_subset, is_checkpoint, labelled_train_test, subset_indices
from gancli.evaluation.scoring import FEATURE_INPUTS
from gancli.metrics.registry import (
    FAKE_CLASSES,
    FAKE_SAMPLES,
    MODE_CENTERS,
    MODE_STD,
    NUM_CLASSES,
    REAL_CLASSES,
    REAL_SAMPLES,
    Metric,
    get_metric,
)

DEFAULT_IMAGE_SAMPLES = 10_000
DEFAULT_POINT_SAMPLES = 2_500  # the VEEGAN / PacGAN mode-coverage protocol
DEFAULT_IMAGE_METRICS = ("fid", "kid", "pr", "dc", "is")
PROVIDED_INPUTS = FEATURE_INPUTS | {
    REAL_SAMPLES, FAKE_SAMPLES, MODE_CENTERS, MODE_STD, FAKE_CLASSES, NUM_CLASSES, REAL_CLASSES,
}
DEFAULT_PROBE_TRAIN = 10_000


@dataclass
class Measured:
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
    pipe: Any = None  # the loaded gancli.Pipeline of a checkpoint
    bn_mode: Optional[str] = None  # "running" or "batch" (checkpoints)
    standing_stats: Optional[int] = None  # forward passes re-estimating BatchNorm statistics before sampling
    standing_done: Optional[int] = None  # BatchNorm layers re-estimated, once done
    standing_truncation: Optional[float] = None  # the truncation they were re-estimated at


@dataclass
class Reference:
    source: str
    split: str
    data: Any
    identity: dict
    toy: Any = None  # gancli.data.toys.ToySpec when the data is a 2-D toy


@dataclass
class Plan:
    """An evaluation, checked and ready to measure; the reference side is computed once, on first use."""

    measured: Measured
    reference: Reference
    chosen: list[Metric]
    needs: set
    extractor: Any
    discriminator: Any
    probe_data: Optional[dict]
    classes: Optional[ClassSetup]
    count: int
    seed: int
    device: str
    use_cache: bool
    cache_dir: Any
    say: Callable[[str], None]
    started: float
    reference_side: Optional[dict] = None
    classification: Optional[dict] = None  # D as a classifier: measured once, shared by every measurement


def prepare(
    source: str, *, data, metrics, num_samples, split, source_split, seed, truncations: Sequence[Optional[float]], ema,
    bn_mode, standing_stats, extractor, inception_weights, use_cache, cache_dir, probe, probe_train, device,
    allow_download, log, default_metrics: Optional[Sequence[str]] = None, intra_fid_reference: str = "matched",
) -> Plan:
    """Check everything `measure` will need (arguments, files, metrics, every truncation value) and open it."""
    say = log or (lambda message: None)
    started = time.perf_counter()
    check_arguments(num_samples, truncations, split, source_split, probe_train, bn_mode, standing_stats)
    device = choose_device(device)
    measured = open_measured(
        source, source_split=source_split, truncations=truncations, ema=ema, probe=probe, bn_mode=bn_mode,
        standing_stats=standing_stats, device=device,
    )
    kind = measured.spec.kind
    count = num_samples or (DEFAULT_IMAGE_SAMPLES if kind == "image" else DEFAULT_POINT_SAMPLES)
    reference = open_reference(data or measured.default_reference, split, measured)
    chosen, explicit = choose_metrics(metrics, kind, reference, default_metrics)
    needs = metric_needs(chosen)
    feature_extractor = None
    if needs & FEATURE_INPUTS:
        feature_extractor = open_extractor(extractor, inception_weights, device, allow_download)
        if not getattr(feature_extractor, "num_classes", 0):
            if explicit and any(metric.name == "is" for metric in chosen):
                raise GancliError(f"metric 'is' needs class logits; extractor {feature_extractor.name!r} has none")
            chosen = [metric for metric in chosen if metric.name != "is"]
    elif extractor is not None or inception_weights is not None:
        raise GancliError("--extractor and --inception-weights apply to feature metrics (fid, kid, pr, dc, is, class-acc, "
                          "intra-fid); none is selected")
    chosen, class_setup = prepare_classes(chosen, explicit, measured, reference, feature_extractor, count,
                                          intra_fid_reference)
    if not chosen:
        raise GancliError("none of the chosen metrics applies to this model and extractor; name some with --metrics")
    needs = metric_needs(chosen)
    discriminator = None
    if measured.checkpoint is not None and (probe or is_labelled(reference.data)):
        from gancli.evaluation.discriminator import load_discriminator

        discriminator = load_discriminator(measured.checkpoint, device)
        if probe and discriminator is None:
            raise GancliError(f"{measured.checkpoint.path} holds no discriminator (D.*) weights; --probe needs a training checkpoint")
    probe_data = probe_data_for(reference, measured, seed, probe_train) if probe else None
    return Plan(
        measured=measured, reference=reference, chosen=chosen, needs=needs, extractor=feature_extractor,
        discriminator=discriminator, probe_data=probe_data, classes=class_setup, count=count, seed=seed, device=device,
        use_cache=use_cache, cache_dir=cache_dir, say=say, started=started,
    )


def metric_needs(chosen: list[Metric]) -> set:
    return set().union(*(metric.needs for metric in chosen)) if chosen else set()


def choose_device(device: Optional[str]) -> str:
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise GancliError(f"--device {device}: no CUDA GPU is available here; use --device cpu")
    return device


def check_arguments(num_samples, truncations, split, source_split, probe_train, bn_mode, standing_stats) -> None:
    if num_samples is not None and num_samples <= 0:
        raise GancliError(f"--num-samples must be positive, got {num_samples}")
    for truncation in truncations:
        if truncation is not None and not truncation >= 0:
            raise GancliError(f"--truncation must be positive (ψ ≥ 0 for W-space models), got {truncation}")
    for flag, value in (("--split", split), ("--split-source", source_split)):
        if value is not None and value not in ("train", "test"):
            raise GancliError(f"{flag} must be train or test, got {value!r}")
    if probe_train <= 0:
        raise GancliError(f"--probe-train must be positive, got {probe_train}")
    if bn_mode is not None and bn_mode not in BN_MODES:
        raise GancliError(f"--bn-mode must be running or batch, got {bn_mode!r}")
    if standing_stats is not None and standing_stats < 1:
        raise GancliError(f"--standing-stats needs at least 1 forward pass, got {standing_stats}")
    if standing_stats is not None and bn_mode == "batch":
        raise GancliError("--standing-stats re-estimates the running statistics, which --bn-mode batch does not use; drop one of them")


def open_measured(source: str, *, source_split, truncations, ema, probe, bn_mode, standing_stats, device) -> Measured:
    if is_checkpoint(source):
        import gancli
        from gancli import checkpoint as ckpt_io
        from gancli.data.sources import locate_source
        from gancli.nn.norms import batch_norm_layers
        from gancli.references import read_checkpoint

        ckpt = read_checkpoint(source)
        if source_split is not None:
            raise GancliError("--split-source picks the split of a data SOURCE; a checkpoint is measured by its samples")
        data_config = ckpt.config.get("data", {})
        trained_on = str(data_config.get("source") or "") or None
        ckpt_io.generator_prefix(ckpt, ema)  # --ema on a file without EMA weights fails now, not after loading
        located = locate_source(trained_on, str(data_config.get("split") or "train")) if trained_on else None
        mode = bn_mode or "running"
        pipe = gancli.load(ckpt.path, device=device, ema=ema, bn_mode=mode)
        for truncation in truncations:
            check_truncation(pipe, truncation)
        if standing_stats is not None and not batch_norm_layers(pipe.generator):
            raise GancliError(f"this {pipe.family} generator has no BatchNorm layers; drop --standing-stats")
        return Measured("checkpoint", ckpt.spec, trained_on, checkpoint=ckpt, name=str(ckpt.path), ema=ema, trained_on=located,
                         pipe=pipe, bn_mode=mode, standing_stats=standing_stats)
    flags = (("--truncation", next((t for t in truncations if t is not None), None)), ("--ema/--no-ema", ema),
             ("--probe", probe or None), ("--bn-mode", bn_mode), ("--standing-stats", standing_stats))
    for flag, value in flags:
        if value is not None:
            raise GancliError(f"{flag} applies to checkpoints; {source!r} is data (real-vs-real)")
    from gancli.data.sources import resolve_data

    split = source_split or "train"
    resolved = resolve_data(source, split=split)
    return Measured("data", resolved.dataset.spec, source, data=resolved.dataset, split=split, name=source, identity=resolved.identity)


def open_reference(source: Optional[str], split: str, measured: Measured) -> Reference:
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
    return Reference(source, split, dataset, resolved.identity, toy=toy)


def choose_metrics(requested, kind: str, reference: Reference, default_images=None) -> tuple[list[Metric], bool]:
    explicit = requested is not None
    if requested is None:
        if kind == "image":
            names = list(default_images or DEFAULT_IMAGE_METRICS)
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


def probe_data_for(reference: Reference, measured: Measured, seed: int, probe_train: int) -> dict:
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
