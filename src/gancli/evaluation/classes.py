"""The class side of evaluating a conditional generator (class-acc, intra-fid): the checks that the
generator's, the reference data's and the extractor's class k are the same class, the class-balanced real
examples intra-FID compares with, and the extractor's own accuracy on them (the check of its class order,
and the ceiling of class accuracy).

Class k of a generator is label k of its training data (the trainer feeds the data's labels); class k of
a domain extractor is label k of the data it was trained on. Nothing in either file says which class a
label is beyond the data's class names, so the names are compared where both sides have them, and the
extractor's head is measured on labelled real examples: a head whose classes were in another order would
classify the real examples of most classes as some other class.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import torch
from torch import Tensor

from gancli.errors import GancliError
from gancli.evaluation.inputs import REFERENCE_SUBSET_SEED, take
from gancli.metrics.registry import FAKE_CLASSES, Metric

CLASS_METRICS = ("class-acc", "intra-fid")
SELECTION_RULE = "class-balanced/1"  # part of the reference cache key: change it when the selection changes
INTRA_FID_REFERENCES = ("matched", "all")
# below this many samples of each class, intra-FID's upward bias (FID's grows as 1/N) dominates differences
# between models; Miyato & Koyama (2018) generate 5000 per class
FEW_PER_CLASS = 500


@dataclass
class ClassSetup:
    """What the class metrics of one evaluation need, decided before any work."""

    num_classes: int
    names: list[str]
    counts: list[int]  # generated samples per class (sample i gets class i mod K)
    reference_counts: Optional[list[int]]  # real examples of each class intra-FID compares with (None: as counts)
    intra_fid: bool
    class_acc: bool
    reference_labelled: bool
    mapping: dict[str, Any] = field(default_factory=dict)  # what the protocol says about class k on each side


def generated_counts(count: int, num_classes: int) -> list[int]:
    """Samples per class when sample i gets class i mod K."""
    return [len(range(k, count, num_classes)) for k in range(num_classes)]


def prepare_classes(chosen: list[Metric], explicit: bool, measured, reference, extractor, count: int,
                    intra_fid_reference: str = "matched") -> tuple[list[Metric], Optional[ClassSetup]]:
    """Check the class metrics among `chosen` (refusing what cannot be measured with one line); a metric
    that was not asked for by name (a default) is dropped instead. Returns the metrics kept and the setup.

    `intra_fid_reference`: "matched" compares each class's samples with as many real examples of it;
    "all" with every real example of the class (Miyato & Koyama's protocol)."""
    if intra_fid_reference not in INTRA_FID_REFERENCES:
        raise GancliError(f"--intra-fid-reference must be matched or all, got {intra_fid_reference!r}")
    wanted = [metric for metric in chosen if FAKE_CLASSES in metric.needs]
    if not wanted:
        return chosen, None
    names = ", ".join(metric.name for metric in wanted)
    if measured.kind != "checkpoint":
        verb = "measures" if len(wanted) == 1 else "measure"
        raise GancliError(f"{names} {verb} a conditional generator's samples; {measured.name!r} is data")
    pipe = measured.pipe
    classes = pipe.num_classes
    dropped: set[str] = set()

    def refuse(metric: Metric, message: str) -> None:
        if explicit:
            raise GancliError(message)
        dropped.add(metric.name)

    for metric in wanted:
        if classes == 0:
            refuse(metric, f"metric {metric.name!r} needs a class-conditional generator; this {pipe.family} model is "
                           f"unconditional (train one on labelled data, e.g. --set conditional=true)")
            continue
        if metric.name == "class-acc":
            has = int(getattr(extractor, "num_classes", 0) or 0)
            if has == 0:
                refuse(metric, f"metric 'class-acc' needs an extractor with class logits; {extractor.name!r} has none")
            elif has != classes:
                refuse(metric, f"metric 'class-acc' needs an extractor whose classes are the model's {classes}; "
                               f"{extractor.name!r} has {has} logits (not this data's classes): train one with "
                               f"gancli eval train-extractor --data D --out ext.safetensors and pass --extractor ext.safetensors")
            elif count < classes:
                refuse(metric, f"metric 'class-acc' needs at least one sample per class: -n {count} < {classes} classes")
        if metric.name == "intra-fid":
            if not is_labelled(reference.data):
                refuse(metric, f"metric 'intra-fid' needs labelled reference data (class sub-folders, IDX labels or an "
                               f"npz 'labels' array); --data {reference.source} has no labels")
            elif reference.data.spec.num_classes != classes:
                refuse(metric, f"metric 'intra-fid': the model has {classes} classes but --data {reference.source} has "
                               f"{reference.data.spec.num_classes}; pass the data the model was trained on")
            elif count < 2 * classes:
                refuse(metric, f"metric 'intra-fid' needs at least 2 samples per class: -n {count} < 2 × {classes} classes")
    kept = [metric for metric in chosen if metric.name not in dropped]
    if not any(FAKE_CLASSES in metric.needs for metric in kept):
        return kept, None
    _check_class_names(pipe, reference)
    everything = [len(reference.data)] * classes  # a quota no class can fill: every example of each class
    setup = ClassSetup(
        num_classes=classes, names=pipe.class_names, counts=generated_counts(count, classes),
        reference_counts=everything if intra_fid_reference == "all" else None,
        intra_fid=any(metric.name == "intra-fid" for metric in kept),
        class_acc=any(metric.name == "class-acc" for metric in kept),
        reference_labelled=is_labelled(reference.data) and reference.data.spec.num_classes == classes,
    )
    setup.mapping = _mapping(setup, measured, reference, extractor)
    return kept, setup


def _check_class_names(pipe, reference) -> None:
    model_names = list(pipe.spec.class_names)
    data_names = list(reference.data.spec.class_names)
    if not (model_names and data_names) or model_names == data_names:
        return
    name = lambda names, k: repr(names[k]) if k < len(names) else "missing"  # noqa: E731
    first = next(k for k in range(max(len(model_names), len(data_names))) if name(model_names, k) != name(data_names, k))
    raise GancliError(
        f"the model's class {first} is {name(model_names, first)} but --data {reference.source}'s is "
        f"{name(data_names, first)}: class k must mean the same on both sides; pass the data the model was trained on"
    )


def _mapping(setup: ClassSetup, measured, reference, extractor) -> dict[str, Any]:
    """The protocol's record of which class k is on each side, and why they are taken to agree."""
    from gancli.data.sources import locate_source

    trained = measured.trained_on or {}
    found: dict[str, Any] = {
        "classes": setup.num_classes,
        "names": setup.names,
        "generator": f"class k is label k of its training data ({trained.get('source', 'unrecorded')})",
        "reference": _reference_mapping(measured, reference, setup),
    }
    if setup.class_acc:
        metadata = getattr(extractor, "metadata", {}) or {}
        extractor_data = metadata.get("training_data") or {}
        same = None
        if extractor_data.get("source") and trained.get("location"):
            located = locate_source(str(extractor_data["source"]), str(extractor_data.get("split") or "train"))
            same = located.get("format") != "missing" and located["location"] == trained["location"]
        found["extractor"] = (
            f"logit k of {extractor.name} is label k of the data it was trained on "
            f"({extractor_data.get('source', 'unrecorded')}, {extractor_data.get('split', '?')} split)"
        )
        found["extractor_trained_on_the_models_data"] = same
        found["assumption"] = (
            "the generator's class k, the reference label k and the extractor's logit k are one class "
            + ("(the extractor was trained on the labels of the model's training data)" if same else
               "(the extractor was trained on other data or its data is not recorded: only the check below supports it)")
        )
    return found


def _reference_mapping(measured, reference, setup: ClassSetup) -> str:
    if not setup.reference_labelled:
        return f"--data {reference.source} has no labels for these {setup.num_classes} classes"
    if measured.pipe.spec.class_names and reference.data.spec.class_names:
        return f"label k of --data {reference.source}; its class names are the model's, in the same order"
    return f"label k of --data {reference.source} (class names not recorded on both sides: compared by index)"


@dataclass
class ClassReference:
    """Class-balanced real examples: per class k the first n_k examples of class k in a seeded shuffle."""

    rows: Tensor  # sorted indices into the reference data
    labels: Tensor
    pixels: Tensor
    counts: list[int]
    description: dict[str, Any]


def class_reference(reference, counts: list[int]) -> ClassReference:
    """`counts[k]` labelled examples of each class k (fewer where the split has fewer), chosen by walking a
    shuffle seeded with REFERENCE_SUBSET_SEED (the same rows for in-memory and lazily read data)."""
    from gancli.data.images import TensorData

    data = reference.data
    total = len(data)
    order = torch.randperm(total, generator=torch.Generator().manual_seed(REFERENCE_SUBSET_SEED))
    needed = list(counts)
    chosen: list[int] = []
    if isinstance(data, TensorData):
        labels = data.labels[order]
        for k, quota in enumerate(counts):
            chosen += order[labels == k][:quota].tolist()
    else:
        for index in order.tolist():
            if not any(needed):
                break
            label = int(data[index][1])
            if 0 <= label < len(needed) and needed[label]:
                chosen.append(index)
                needed[label] -= 1
    rows = torch.tensor(sorted(chosen), dtype=torch.int64)
    pixels, labels = take(data, rows)
    found = torch.bincount(labels, minlength=len(counts)).tolist()
    split = reference.identity["split"]
    examples = "all examples (no splits)" if split == "whole" else f"the {split} examples"
    description = {
        "selection": f"per class k, the first n_k labelled examples of class k in a shuffle of {examples} "
                     f"(seed {REFERENCE_SUBSET_SEED}); n_k = the generated samples of class k"
        if max(counts) < total else f"every labelled example of each class among {examples}",
        "per_class_counts": found,
        "count": int(len(rows)),
    }
    return ClassReference(rows, labels, pixels, found, description)


def cache_selection(counts: list[int]) -> dict[str, Any]:
    """The class-balanced selection as part of the reference cache key."""
    return {"rule": SELECTION_RULE, "per_class": list(counts), "seed": REFERENCE_SUBSET_SEED}


def label_check(extractor, class_ref: ClassReference, num_classes: int, reference) -> tuple[dict, list[str]]:
    """The extractor's head on the class-balanced real examples: its accuracy per class (the ceiling of
    class accuracy), and caveats where it does not recognise a class (classes in another order, or a weak head)."""
    from gancli.metrics.classwise import class_accuracy

    _, logits = extractor.features(class_ref.pixels)
    result = class_accuracy(logits, class_ref.labels.numpy(), num_classes)
    chance = 1.0 / num_classes
    check = {
        "what": f"{extractor.name}'s argmax on the {len(class_ref.labels)} class-balanced real examples of --data "
                f"{reference.source} ({reference.identity['split']}) equals their label",
        "real_accuracy": result.accuracy, "real_accuracy_per_class": result.per_class, "counts": result.counts,
        "chance": chance,
    }
    caveats = []
    if result.accuracy < 2 * chance:
        caveats.append(
            f"class accuracy: {extractor.name} assigns only {result.accuracy:.1%} of real labelled examples to their own "
            f"class (chance {chance:.1%}): its classes may be in another order than the data's, or it is too weak; "
            "the class accuracy of the samples means little"
        )
    else:
        weak = [k for k, value in enumerate(result.per_class) if value == value and value < 2 * chance]
        if weak:
            caveats.append(
                f"class accuracy: {extractor.name} recognises few real examples of class(es) {', '.join(map(str, weak))} "
                "(below twice chance): those classes' sample accuracy cannot be judged"
            )
    check["agrees"] = not caveats
    return check, caveats


def is_labelled(dataset) -> bool:
    """Whether the data has labels (semi-supervised sets mark unlabelled examples -1)."""
    from gancli.data.images import TensorData

    if isinstance(dataset, TensorData):
        return dataset.labels is not None and bool((dataset.labels >= 0).any())
    return bool(getattr(dataset, "has_labels", False))
