"""The feature side of an evaluation: which extractor, how it prepares images, and the reference features
(through the cache, keyed by everything that could change them)."""
from __future__ import annotations

import datetime
from typing import Any, Callable, Optional

from torch import Tensor

from gancli.errors import GancliError
from gancli.evaluation.inputs import REFERENCE_SUBSET_SEED, offline, pixels_sha256, take

# identity fields that decide which examples (and which bytes) a reference is made of
DATA_KEY_FIELDS = ("location", "format", "alias_resolved", "examples", "fingerprint", "revision", "hub_fingerprint")


def open_extractor(name: Optional[str], inception_weights, device, allow_download):
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


def describe_extractor(extractor, spec) -> dict:
    """Name, hash, code version and preprocessing of the feature extractor, plus notes on conversions it makes."""
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
        "code_version": getattr(extractor, "code_version", "unversioned"),
        "feature_dim": int(extractor.feature_dim), "num_classes": int(extractor.num_classes),
        "preprocessing": preprocessing, "notes": notes,
    }
    for key in ("test_accuracy", "training_data"):
        if key in metadata:
            description[key] = metadata[key]
    return description


def reference_pixels(dataset, rows: Tensor) -> Optional[Tensor]:
    """The reference subset's uint8 pixels when the data is in memory (cheap to take), else None."""
    return take(dataset, rows)[0] if getattr(dataset, "in_memory", False) else None


def reference_features(
    extractor, dataset, identity: dict, rows: Tensor, description: dict, *, pixels: Optional[Tensor], device,
    use_cache: bool, cache_dir, say: Callable[[str], None], selection: Optional[dict] = None,
):
    """Features of the reference subset `rows`, from the cache when nothing that determines them changed.

    `selection` describes how `rows` were chosen when they are not the seeded random subset of their count
    (the class-balanced examples of intra-FID); it becomes part of the cache key."""
    import numpy as np
    import torch

    import gancli
    from gancli.metrics.extractors import float32_precision_note
    from gancli.metrics.reference_cache import cached_reference_features

    spec = dataset.spec
    key_fields: dict[str, Any] = {
        "data": {field: identity[field] for field in DATA_KEY_FIELDS if field in identity},
        "split": identity["split"], "count": len(rows), "subset_seed": REFERENCE_SUBSET_SEED,
        "image": {"channels": spec.channels, "resolution": spec.resolution},
        "extractor": extractor.name, "extractor_sha256": extractor.sha256, "extractor_code": description["code_version"],
        "resize": description["preprocessing"], "loader": identity.get("loader"),
    }
    if pixels is not None:
        key_fields["pixels_sha256"] = pixels_sha256(pixels)
    if selection is not None:
        key_fields["selection"] = selection
    provenance = {
        "device": str(device), "float32": float32_precision_note(device), "torch": torch.__version__,
        "numpy": np.__version__, "gancli": gancli.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }

    def compute():
        say(f"extracting {extractor.name} features of {len(rows)} reference images ({identity['source']}, {identity['split']})")
        values = pixels if pixels is not None else take(dataset, rows)[0]
        features, _ = extractor.features(values)
        return features

    return cached_reference_features(key_fields, compute, cache_dir=cache_dir, no_cache=not use_cache, provenance=provenance)
