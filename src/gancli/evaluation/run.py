"""`evaluate()`: a checkpoint's samples (or a dataset's examples) against reference data, every number with
the protocol that produced it.

Order of work: every argument, file and metric is checked first (a user error costs no computation and
prints nothing but its one line), then samples are generated, features extracted (the reference side
through the cache), metrics computed, and the discriminator measured as a classifier where it is one.
`prepare()` does the checking and `measure()` the work, so that a truncation sweep
(gancli.evaluation.sweep) checks once and measures each value against the same reference side.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from torch import Tensor

from gancli.errors import GancliError
from gancli.evaluation.classes import (
    FEW_PER_CLASS, ClassSetup, cache_selection, class_reference, is_labelled, label_check, prepare_classes,
)
from gancli.evaluation.features import describe_extractor, open_extractor, reference_features, reference_pixels
from gancli.evaluation.generation import (
    BN_MODES,
    STANDING_BATCH,
    check_truncation,
    describe_batch_norm,
    generate_samples,
    truncation_space,
)
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
    FAKE_CLASSES,
    FAKE_FEATURES,
    FAKE_LOGITS,
    MODE_CENTERS,
    MODE_STD,
    NUM_CLASSES,
    REAL_CLASS_FEATURES,
    REAL_CLASSES,
    REAL_FEATURES,
    REAL_SAMPLES,
    FAKE_SAMPLES,
    Metric,
    get_metric,
)

DEFAULT_IMAGE_SAMPLES = 10_000
DEFAULT_POINT_SAMPLES = 2_500  # the VEEGAN / PacGAN mode-coverage protocol
DEFAULT_IMAGE_METRICS = ("fid", "kid", "pr", "dc", "is")
FEATURE_INPUTS = frozenset({REAL_FEATURES, FAKE_FEATURES, FAKE_LOGITS, REAL_CLASS_FEATURES})
PROVIDED_INPUTS = FEATURE_INPUTS | {
    REAL_SAMPLES, FAKE_SAMPLES, MODE_CENTERS, MODE_STD, FAKE_CLASSES, NUM_CLASSES, REAL_CLASSES,
}
DEFAULT_PROBE_TRAIN = 10_000
EXAMPLES = 8  # measured images a report keeps for pictures


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
    pipe: Any = None  # the loaded gancli.Pipeline of a checkpoint
    bn_mode: Optional[str] = None  # "running" or "batch" (checkpoints)
    standing_stats: Optional[int] = None  # forward passes re-estimating BatchNorm statistics before sampling
    standing_done: Optional[int] = None  # BatchNorm layers re-estimated, once done
    standing_truncation: Optional[float] = None  # the truncation they were re-estimated at


@dataclass
class _Reference:
    source: str
    split: str
    data: Any
    identity: dict
    toy: Any = None  # gancli.data.toys.ToySpec when the data is a 2-D toy


@dataclass
class Plan:
    """An evaluation, checked and ready to measure; the reference side is computed once, on first use."""

    measured: _Measured
    reference: _Reference
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
    bn_mode: Optional[str] = None,
    standing_stats: Optional[int] = None,
    extractor: Optional[str] = None,
    inception_weights: Optional[str] = None,
    use_cache: bool = True,
    cache_dir: Optional[str | Path] = None,
    probe: bool = False,
    probe_train: int = DEFAULT_PROBE_TRAIN,
    device: Optional[str] = None,
    allow_download: Optional[bool] = None,
    log: Optional[Callable[[str], None]] = None,
    intra_fid_reference: str = "matched",
) -> EvalReport:
    """Measure `source` (a checkpoint, or a data source for real-vs-real floors) against `data`/`split`.

    Defaults: `data` is the checkpoint's training data (for a data source: the same source), `split` is
    "test", `source_split` (data sources only) is "train"; `num_samples` is 10,000 for images and 2,500 for
    2-D points; `metrics` are fid,kid,pr,dc,is for images (is only with an extractor that has logits) and
    modes (toys with modes), parzen for points; class-acc and intra-fid measure conditional generators.
    `extractor` is "inception" or the path of an extractor file written by `gancli eval train-extractor`;
    downloads are tried unless `allow_download=False` or GANCLI_OFFLINE=1. `bn_mode` ("running", the
    default, or "batch") and `standing_stats` (N forward passes re-estimating BatchNorm statistics first)
    choose how a checkpoint's BatchNorm layers normalise. `intra_fid_reference` "matched" compares each
    class's samples with as many real examples of the class, "all" with all of them (Miyato & Koyama).
    Raises GancliError for anything the user can fix.
    """
    plan = prepare(
        source, data=data, metrics=metrics, num_samples=num_samples, split=split, source_split=source_split, seed=seed,
        truncations=[truncation], ema=ema, bn_mode=bn_mode, standing_stats=standing_stats, extractor=extractor,
        inception_weights=inception_weights, use_cache=use_cache, cache_dir=cache_dir, probe=probe,
        probe_train=probe_train, device=device, allow_download=allow_download, log=log,
        intra_fid_reference=intra_fid_reference,
    )
    return measure(plan, truncation)


def prepare(
    source: str, *, data, metrics, num_samples, split, source_split, seed, truncations: Sequence[Optional[float]], ema,
    bn_mode, standing_stats, extractor, inception_weights, use_cache, cache_dir, probe, probe_train, device,
    allow_download, log, default_metrics: Optional[Sequence[str]] = None, intra_fid_reference: str = "matched",
) -> Plan:
    """Check everything `measure` will need (arguments, files, metrics, every truncation value) and open it."""
    say = log or (lambda message: None)
    started = time.perf_counter()
    _check_arguments(num_samples, truncations, split, source_split, probe_train, bn_mode, standing_stats)
    device = choose_device(device)
    measured = _open_measured(
        source, source_split=source_split, truncations=truncations, ema=ema, probe=probe, bn_mode=bn_mode,
        standing_stats=standing_stats, device=device,
    )
    kind = measured.spec.kind
    count = num_samples or (DEFAULT_IMAGE_SAMPLES if kind == "image" else DEFAULT_POINT_SAMPLES)
    reference = _open_reference(data or measured.default_reference, split, measured)
    chosen, explicit = _choose_metrics(metrics, kind, reference, default_metrics)
    needs = _needs(chosen)
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
    needs = _needs(chosen)
    discriminator = None
    if measured.checkpoint is not None and (probe or is_labelled(reference.data)):
        from gancli.evaluation.discriminator import load_discriminator

        discriminator = load_discriminator(measured.checkpoint, device)
        if probe and discriminator is None:
            raise GancliError(f"{measured.checkpoint.path} holds no discriminator (D.*) weights; --probe needs a training checkpoint")
    probe_data = _probe_data(reference, measured, seed, probe_train) if probe else None
    return Plan(
        measured=measured, reference=reference, chosen=chosen, needs=needs, extractor=feature_extractor,
        discriminator=discriminator, probe_data=probe_data, classes=class_setup, count=count, seed=seed, device=device,
        use_cache=use_cache, cache_dir=cache_dir, say=say, started=started,
    )


def measure(plan: Plan, truncation: Optional[float]) -> EvalReport:
    """The work of one evaluation at `truncation` (everything was checked by `prepare`)."""
    say, measured, reference, kind = plan.say, plan.measured, plan.reference, plan.measured.spec.kind
    started = plan.started if plan.reference_side is None else time.perf_counter()
    timings: dict[str, float] = {}
    if plan.measured.standing_stats and (measured.standing_done is None or measured.standing_truncation != truncation):
        # at the truncation the samples are drawn with, as `gancli sample --standing-stats` does
        clock = time.perf_counter()
        at = "" if truncation is None else f" at truncation {truncation:g}"
        say(f"re-estimating BatchNorm statistics from {measured.standing_stats} forward passes of {STANDING_BATCH}{at}")
        measured.standing_done = measured.pipe.standing_statistics(
            measured.standing_stats, batch_size=STANDING_BATCH, seed=plan.seed, truncation=truncation)
        measured.standing_truncation = truncation
        timings["standing_statistics_s"] = time.perf_counter() - clock
    clock = time.perf_counter()
    fake, fake_description, fake_classes = _measured_samples(measured, plan.count, seed=plan.seed, truncation=truncation, say=say)
    timings["samples_s"] = time.perf_counter() - clock
    side = _reference_side(plan)
    timings.update(side["timings"])
    real_count, reference_description = side["count"], side["description"]
    caveats = list(side["caveats"])
    compares_reference = bool(plan.needs & {REAL_FEATURES, REAL_SAMPLES})
    if compares_reference and real_count != len(fake):
        caveats.insert(0, f"{len(fake)} measured vs {real_count} reference samples: FID and KID depend on N; compare results only at equal N")

    inputs: dict[str, Any] = dict(side["inputs"])
    if plan.extractor is not None:
        clock = time.perf_counter()
        say(f"extracting {plan.extractor.name} features of {len(fake)} measured images")
        fake_features, fake_logits = plan.extractor.features(fake)
        timings["features_s"] = time.perf_counter() - clock
        inputs.update({FAKE_FEATURES: fake_features, FAKE_LOGITS: fake_logits})
    if plan.needs & {REAL_SAMPLES, FAKE_SAMPLES}:
        inputs[FAKE_SAMPLES] = _flat_samples(fake, kind)
    if plan.classes is not None:
        inputs.update({FAKE_CLASSES: fake_classes.numpy(), NUM_CLASSES: plan.classes.num_classes})

    clock = time.perf_counter()
    scores = score(
        plan.chosen, inputs, seed=plan.seed, kind=kind, measured_count=len(fake), reference_count=real_count,
        reference_split=reference.identity["split"], extractor=plan.extractor,
        reference_pixels_sha256=reference_description.get("pixels_sha256"),
        class_names=plan.classes.names if plan.classes is not None else (), say=say,
    )
    caveats += scores.caveats
    timings.update(scores.timings_s)
    timings["metrics_s"] = time.perf_counter() - clock
    results, labels = scores.results, scores.labels

    if plan.discriminator is not None:
        if plan.classification is None:
            clock = time.perf_counter()
            plan.classification = _discriminator_results(plan)
            timings["classification_s"] = time.perf_counter() - clock
        for key in ("semi_supervised_accuracy", "semi_supervised_accuracy_polyak", "probe_accuracy"):
            if key in plan.classification:
                results[key] = plan.classification[key]["accuracy"]
                labels[key] = PLAIN_LABELS[key]
    timings["total_s"] = time.perf_counter() - started

    protocol = _protocol(
        plan, fake_description, reference_description, side["extractor"], scores.protocol, truncation=truncation,
    )
    return EvalReport(
        results=results, labels=labels, protocol=protocol, classification=dict(plan.classification or {}),
        caveats=caveats, timings_s={key: round(value, 3) for key, value in timings.items()},
        title=_title(measured, fake_description, reference_description, side["extractor"]),
        floors=scores.floors, examples=fake[:EXAMPLES].clone() if kind == "image" else None,
    )


def _needs(chosen: list[Metric]) -> set:
    return set().union(*(metric.needs for metric in chosen)) if chosen else set()


def _reference_side(plan: Plan) -> dict:
    """The reference subset, its description, features and the class-balanced examples: computed once per plan."""
    if plan.reference_side is not None:
        return {**plan.reference_side, "timings": {}}
    reference, measured, say = plan.reference, plan.measured, plan.say
    kind = measured.spec.kind
    timings: dict[str, float] = {}
    real_count = min(plan.count, len(reference.data))
    real_rows = subset_indices(len(reference.data), real_count, REFERENCE_SUBSET_SEED)
    real_pixels = reference_pixels(reference.data, real_rows)
    description = describe_reference(reference.source, reference.data, reference.identity, real_count, real_pixels, reference.split)
    caveats = _overlap_caveats(measured, reference, description)
    inputs: dict[str, Any] = {}
    extractor_description = None
    if plan.extractor is not None:
        extractor_description = describe_extractor(plan.extractor, reference.data.spec)
        caveats += extractor_description.pop("notes")
        if REAL_FEATURES in plan.needs:
            clock = time.perf_counter()
            cached = reference_features(
                plan.extractor, reference.data, reference.identity, real_rows, extractor_description, pixels=real_pixels,
                device=plan.device, use_cache=plan.use_cache, cache_dir=plan.cache_dir, say=say,
            )
            timings["reference_features_s"] = time.perf_counter() - clock
            description["cache"] = "off" if not plan.use_cache else ("hit" if cached.from_cache else "miss")
            description["features_computed"] = cached.provenance
            inputs.update({REAL_FEATURES: cached.features, "_real_stats": cached.stats})
        else:
            description["features"] = "not computed: no chosen metric compares with this subset"
    if plan.needs & {REAL_SAMPLES, FAKE_SAMPLES}:
        inputs[REAL_SAMPLES] = _flat_samples(real_pixels if real_pixels is not None else take(reference.data, real_rows)[0], kind)
    if reference.toy is not None and reference.toy.centers is not None:
        inputs.update({MODE_CENTERS: reference.toy.centers, MODE_STD: reference.toy.std})
    if plan.classes is not None:
        clock = time.perf_counter()
        class_caveats = _class_reference(plan, extractor_description, inputs)
        caveats += class_caveats
        timings["class_reference_s"] = time.perf_counter() - clock
    plan.reference_side = {
        "count": real_count, "description": description, "caveats": caveats, "inputs": inputs,
        "extractor": extractor_description,
    }
    return {**plan.reference_side, "timings": timings}


def _class_reference(plan: Plan, extractor_description: dict, inputs: dict) -> list[str]:
    """Class-balanced real examples (intra-FID's reference, and the check of the extractor's class order)."""
    setup, reference = plan.classes, plan.reference
    caveats: list[str] = []
    if not setup.reference_labelled:
        setup.mapping["check"] = f"not checked: --data {reference.source} has no labels for the model's classes"
        return caveats
    wanted = setup.reference_counts or setup.counts
    plan.say(f"taking class-balanced examples of {reference.source} ({reference.identity['split']}): "
             + (f"up to {max(setup.counts)} of each of {setup.num_classes} classes" if setup.reference_counts is None
                else f"every example of each of {setup.num_classes} classes"))
    chosen = class_reference(reference, wanted)
    setup.mapping["reference_examples"] = chosen.description
    short = [k for k, (have, want) in enumerate(zip(chosen.counts, setup.counts)) if have < want]
    if setup.intra_fid and min(setup.counts) < FEW_PER_CLASS:
        caveats.append(
            f"intra-FID: {min(setup.counts)} samples per class (N/K = {plan.count}/{setup.num_classes}) is few; each "
            f"class's FID is biased upwards, more so the fewer: compare only at equal N, or use -n "
            f"{FEW_PER_CLASS * setup.num_classes} or more (Miyato & Koyama generate 5000 per class)"
        )
    if short and setup.reference_counts is None:
        caveats.append(
            f"intra-FID: --data {reference.source} ({reference.identity['split']}) has fewer examples than samples of "
            f"class(es) {', '.join(map(str, short))}: those classes compare unequal N"
        )
    if setup.intra_fid:
        cached = reference_features(
            plan.extractor, reference.data, reference.identity, chosen.rows, extractor_description, pixels=chosen.pixels,
            device=plan.device, use_cache=plan.use_cache, cache_dir=plan.cache_dir, say=plan.say,
            selection=cache_selection(chosen.counts),
        )
        setup.mapping["reference_examples"]["cache"] = "off" if not plan.use_cache else ("hit" if cached.from_cache else "miss")
        inputs.update({REAL_CLASS_FEATURES: cached.features, REAL_CLASSES: chosen.labels.numpy()})
    if setup.class_acc:
        check, check_caveats = label_check(plan.extractor, chosen, setup.num_classes, reference)
        setup.mapping["check"] = check
        caveats += check_caveats
    return caveats


def _discriminator_results(plan: Plan) -> dict:
    """D as a classifier (semi-supervised accuracy, raw and Polyak-averaged) and the linear probe."""
    from gancli.evaluation.discriminator import load_discriminator

    measured, kind = plan.measured, plan.measured.spec.kind
    classification = _classification(plan.discriminator, plan.reference, plan.probe_data, kind, plan.device, plan.say)
    averaged = load_discriminator(measured.checkpoint, plan.device, averaged=True)
    if averaged is not None and "semi_supervised_accuracy" in classification:
        # openai/improved-gan reports the test accuracy of the Polyak-averaged D; report both
        polyak = _classification(averaged, plan.reference, None, kind, plan.device, plan.say)
        if "semi_supervised_accuracy" in polyak:
            classification["semi_supervised_accuracy_polyak"] = {
                **polyak["semi_supervised_accuracy"], "discriminator": "Polyak average (D_ema)",
                "decay": measured.checkpoint.config.get("train", {}).get("ema_discriminator_decay"),
            }
    return classification


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


def _check_arguments(num_samples, truncations, split, source_split, probe_train, bn_mode, standing_stats) -> None:
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


def _open_measured(source: str, *, source_split, truncations, ema, probe, bn_mode, standing_stats, device) -> _Measured:
    if is_checkpoint(source):
        import gancli
        from gancli import checkpoint as ckpt_io
        from gancli.data.sources import locate_source
        from gancli.nn.norms import batch_norm_layers

        ckpt = ckpt_io.read(source)
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
        return _Measured("checkpoint", ckpt.spec, trained_on, checkpoint=ckpt, name=str(ckpt.path), ema=ema, trained_on=located,
                         pipe=pipe, bn_mode=mode, standing_stats=standing_stats)
    flags = (("--truncation", next((t for t in truncations if t is not None), None)), ("--ema/--no-ema", ema),
             ("--probe", probe or None), ("--bn-mode", bn_mode), ("--standing-stats", standing_stats))
    for flag, value in flags:
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




def _choose_metrics(requested, kind: str, reference: _Reference, default_images=None) -> tuple[list[Metric], bool]:
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




# ---------------------------------------------------------------- samples


def _measured_samples(measured: _Measured, count: int, *, seed, truncation, say) -> tuple[Tensor, dict, Optional[Tensor]]:
    """uint8 images (N, C, H, W) or float points (N, D) of the measured side, how they were made, and the
    class each sample was generated for (None for data and unconditional generators)."""
    if measured.kind == "data":
        total = len(measured.data)
        rows = subset_indices(total, count, seed)
        say(f"taking {len(rows)} examples of {measured.name} ({measured.split})")
        values, _ = take(measured.data, rows)
        identity = {key: value for key, value in measured.identity.items() if key != "source"}
        return values, {"source": measured.name, **identity, "count": len(rows), "subset": describe_subset(total, len(rows), seed)}, None
    from gancli import checkpoint as ckpt_io
    from gancli.metrics._files import sha256_of_file

    ckpt = measured.checkpoint
    samples, drawn, classes = generate_samples(measured.pipe, count, seed=seed, truncation=truncation, say=say)
    return samples, {
        "checkpoint": str(ckpt.path.resolve()), "checkpoint_sha256": sha256_of_file(ckpt.path), "family": ckpt.family, "plugin": ckpt.plugin, "step": ckpt.step,
        "images_seen": ckpt.images_seen, "generator": ckpt_io.generator_prefix(ckpt, measured.ema).rstrip("."),
        "count": count, **drawn, "trained_on": measured.trained_on,
    }, classes


def _flat_samples(values: Tensor, kind: str) -> Tensor:
    from gancli.data.images import to_float

    return (to_float(values) if kind == "image" else values.float()).flatten(1)


# ---------------------------------------------------------------- the discriminator as a classifier


def _classification(loaded, reference: _Reference, probe_data: Optional[dict], kind: str, device, say) -> dict:
    from gancli.evaluation.discriminator import discriminator_accuracy, linear_probe

    D, record = loaded
    found: dict[str, Any] = {}
    if is_labelled(reference.data):
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


def _protocol(plan: Plan, fake_description, reference_description, extractor_description, metric_protocol, *, truncation) -> dict:
    import gancli
    from gancli.metrics.extractors import float32_precision_note

    measured = plan.measured
    is_checkpoint_source = measured.kind == "checkpoint"
    protocol = {
        "gancli_version": gancli.__version__,
        "torch_version": torch.__version__,
        "source": {"kind": measured.kind, **fake_description},
        "num_samples": fake_description["count"],
        "seed": plan.seed,
        "ema": (fake_description["generator"] == "G_ema") if is_checkpoint_source else None,
        "truncation": truncation,
        "truncation_space": truncation_space(measured.pipe) if is_checkpoint_source else None,
        "bn_mode": (describe_batch_norm(measured.pipe, measured.bn_mode, measured.standing_stats, measured.standing_done)
                    if is_checkpoint_source else None),
        "reference": reference_description,
        "extractor": extractor_description,
        "metric_versions": {name: entry["version"] for name, entry in metric_protocol.items()},
        "metrics": metric_protocol,
        "device": str(plan.device),
        "float32": float32_precision_note(plan.device),
    }
    if plan.classes is not None:
        protocol["classes"] = {
            **plan.classes.mapping, "generated_per_class": plan.classes.counts,
            "scheme": f"sample i gets class i mod {plan.classes.num_classes}: class k gets the latents of rows k, k + K, … "
                      f"drawn from --seed {plan.seed}",
        }
    return protocol


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
