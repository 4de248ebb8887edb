"""The protocol of an evaluation: what was measured against what, how, with which software, and its title."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
from torch import Tensor

from gancli.evaluation.generation import describe_batch_norm, truncation_space
from gancli.evaluation.inputs import REFERENCE_SUBSET_SEED, describe_subset, overlaps, pixels_sha256
from gancli.evaluation.plan import Measured, Plan, Reference


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


def overlap_caveats(measured: Measured, reference: Reference, description: dict) -> list[str]:
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


def describe_protocol(plan: Plan, fake_description, reference_description, extractor_description, metric_protocol, *, truncation) -> dict:
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


def report_title(measured, fake_description, reference_description, extractor_description) -> str:
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
