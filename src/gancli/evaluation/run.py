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
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from torch import Tensor

from gancli.evaluation.classes import FEW_PER_CLASS, cache_selection, class_reference, label_check
from gancli.evaluation.classification import discriminator_results
from gancli.evaluation.features import describe_extractor, reference_features, reference_pixels
from gancli.evaluation.generation import STANDING_BATCH, generate_samples
from gancli.evaluation.inputs import REFERENCE_SUBSET_SEED, describe_subset, subset_indices, take
from gancli.evaluation.plan import DEFAULT_PROBE_TRAIN, Measured, Plan, prepare
from gancli.evaluation.protocol import describe_protocol, describe_reference, overlap_caveats, report_title
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
)

EXAMPLES = 8  # measured images a report keeps for pictures


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
            plan.classification = discriminator_results(plan)
            timings["classification_s"] = time.perf_counter() - clock
        for key in ("semi_supervised_accuracy", "semi_supervised_accuracy_polyak", "probe_accuracy"):
            if key in plan.classification:
                results[key] = plan.classification[key]["accuracy"]
                labels[key] = PLAIN_LABELS[key]
    timings["total_s"] = time.perf_counter() - started

    protocol = describe_protocol(
        plan, fake_description, reference_description, side["extractor"], scores.protocol, truncation=truncation,
    )
    return EvalReport(
        results=results, labels=labels, protocol=protocol, classification=dict(plan.classification or {}),
        caveats=caveats, timings_s={key: round(value, 3) for key, value in timings.items()},
        title=report_title(measured, fake_description, reference_description, side["extractor"]),
        floors=scores.floors, examples=fake[:EXAMPLES].clone() if kind == "image" else None,
    )


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
    caveats = overlap_caveats(measured, reference, description)
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


# ---------------------------------------------------------------- samples


def _measured_samples(measured: Measured, count: int, *, seed, truncation, say) -> tuple[Tensor, dict, Optional[Tensor]]:
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
