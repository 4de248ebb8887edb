"""What `gancli eval` reads: is SOURCE a checkpoint or data, which examples, and how data is identified."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor

from gancli.errors import GancliError

# The reference subset does not depend on --seed, so its cached features serve every seed.
REFERENCE_SUBSET_SEED = 0
# Share of a split-less labelled dataset (an .npz, a folder) held out as its test part.
HOLDOUT_FRACTION = 0.2


def is_checkpoint(source: str) -> bool:
    """A .safetensors path (existing or not), a pickle-suffixed file, or an existing non-data file.

    An exported model folder (config.json + model.safetensors) and ``hf://owner/name`` are models too.
    Everything else (aliases, toys, folders, .npz / IDX files, hub ids) is data, so that `gancli eval
    fashion-mnist` measures a dataset while `gancli eval run/last.safetensors` measures a model.
    """
    from gancli.checkpoint import PICKLE_SUFFIXES
    from gancli.data.folders import IMAGE_SUFFIXES

    from gancli.model_folder import is_model_folder

    if str(source).startswith("hf://"):
        return True  # a model on the hub; a bare owner/name stays a dataset id here
    path = Path(source).expanduser()
    suffix = path.suffix.lower()
    if suffix == ".safetensors" or suffix in PICKLE_SUFFIXES or is_model_folder(path):
        return True
    if path.is_dir() and (path / "checkpoints").is_dir():
        raise GancliError(f"{path} is a run folder; pass one of its checkpoints, e.g. {path / 'checkpoints' / 'last.safetensors'}")
    if not path.is_file():
        return False
    name = path.name.lower()
    data_file = suffix in {".npz", *IMAGE_SUFFIXES} or "idx" in name or "ubyte" in name
    return not data_file


def overlaps(trained_on: dict, reference: dict) -> Optional[bool]:
    """Whether the reference examples include the training examples, from two `locate_source` identities:
    same location and the same split (or a source without splits). None when the training data cannot
    be located here (e.g. a relative path recorded on another machine or in another folder)."""
    if trained_on.get("format") == "missing":
        return None
    if trained_on["location"] != reference["location"]:
        return False
    return "whole" in (trained_on["split"], reference["split"]) or trained_on["split"] == reference["split"]


def pixels_sha256(values: Tensor) -> str:
    """sha256 of a batch of decoded examples (shape, dtype and bytes): the exact content features are computed from."""
    import hashlib

    contiguous = values.contiguous()
    digest = hashlib.sha256(f"{tuple(contiguous.shape)}|{contiguous.dtype}|".encode())
    digest.update(contiguous.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def subset_indices(total: int, count: int, seed: int) -> Tensor:
    """All indices when `count` covers the data, else a seeded random subset, sorted."""
    if count >= total:
        return torch.arange(total)
    order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
    return order[:count].sort().values


def describe_subset(total: int, count: int, seed: int) -> str:
    return "all" if count >= total else f"random {count} of {total} (seed {seed})"


def take(data, indices: Tensor) -> tuple[Tensor, Optional[Tensor]]:
    """Values (uint8 images or float points) and labels (None when unlabelled) of the given examples."""
    from gancli.data.images import TensorData, stack

    if isinstance(data, TensorData):
        labels = data.labels[indices] if data.labels is not None else None
        return data.values[indices], labels
    items = [data[int(index)] for index in indices]
    labels = torch.tensor([label for _, label in items], dtype=torch.int64) if data.has_labels else None
    return stack([values for values, _ in items]), labels


def labelled_examples(data, what: str) -> tuple[Tensor, Tensor]:
    """Every example of `data` that has a label (semi-supervised sets mark the others −1)."""
    values, labels = take(data, torch.arange(len(data)))
    if labels is None:
        raise GancliError(f"{what} has no labels; this needs labelled data (class sub-folders, IDX labels or an npz 'labels' array)")
    keep = labels >= 0
    if not bool(keep.any()):
        raise GancliError(f"{what} has no labelled examples")
    return values[keep], labels[keep]


def same_examples(a: Tensor, b: Tensor) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a, b))


def labelled_train_test(
    source: str, test_split: str, *, resolution: Optional[int], channels: Optional[int], seed: int
) -> tuple[Tensor, Tensor, Tensor, Tensor, dict]:
    """Labelled train examples (the train split) and test examples (`test_split`) of `source`.

    A source without splits (an .npz or a folder gives the same examples for both) is split instead:
    a seeded HOLDOUT_FRACTION becomes the test part, so train and test never share an example.
    """
    from gancli.data.sources import load_data

    def load(split: str):
        return load_data(source, resolution=resolution, channels=channels, split=split)

    train_values, train_labels = labelled_examples(load("train"), f"{source} (train split)")
    test_values, test_labels = labelled_examples(load(test_split), f"{source} ({test_split} split)")
    if test_split == "train" or same_examples(train_values, test_values):
        order = torch.randperm(len(train_values), generator=torch.Generator().manual_seed(seed))
        held_out = max(1, round(HOLDOUT_FRACTION * len(order)))
        if len(order) - held_out < 1:
            raise GancliError(f"{source} has too few labelled examples ({len(order)}) to hold some out for testing")
        test_rows, train_rows = order[:held_out].sort().values, order[held_out:].sort().values
        test_values, test_labels = train_values[test_rows], train_labels[test_rows]
        train_values, train_labels = train_values[train_rows], train_labels[train_rows]
        how = {"test": f"held-out {HOLDOUT_FRACTION:.0%} of the labelled examples (seed {seed})", "holdout": True}
    else:
        how = {"test": f"{test_split} split", "holdout": False}
    return train_values, train_labels, test_values, test_labels, how


def offline() -> bool:
    """GANCLI_OFFLINE=1: never try a download (the Inception weights), fail with what to do instead."""
    return os.environ.get("GANCLI_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")
