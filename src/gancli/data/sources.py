"""Resolve ``--data`` into a dataset: folders, IDX, npz, Hugging Face ids, aliases, 2-D toys.

The kinds of source live in their own modules: gancli.data.folders (local paths), gancli.data.arrays
(IDX and .npz), gancli.data.hub_datasets (aliases and Hugging Face ids), gancli.data.toys; a source's
identity and fingerprint in gancli.data.identity.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from gancli.data import toys
from gancli.data.fingerprints import LOADER_RESIZE
from gancli.data.folders import IMAGE_SUFFIXES, SPLITS, looks_like_path, open_path
from gancli.data.hub_datasets import ALIASES, open_alias, open_hub
from gancli.data.identity import locate_source, source_fingerprint
from gancli.data.images import Dataset, TensorData, keep_labels_per_class
from gancli.errors import GancliError

__all__ = ["load_data", "resolve_data", "ResolvedData", "locate_source", "Dataset", "ALIASES", "IMAGE_SUFFIXES", "SPLITS"]


def load_data(
    source: str,
    *,
    resolution: Optional[int] = None,
    channels: Optional[int] = None,
    split: str = "train",
    labeled: Optional[int] = None,
    seed: int = 0,
    limit: Optional[int] = None,
    mirror: bool = False,
) -> Dataset:
    """Open ``source`` and return a dataset whose images are uint8 (N, C, R, R).

    ``limit`` keeps a seeded random subset of that many examples (the small-data case);
    ``mirror`` adds every image's left-right mirror image, doubling the data (as stylegan2-ada's
    ``--mirror``)."""
    if not source:
        raise GancliError("no data given; pass --data (a folder, an IDX/npz file, a dataset id, or e.g. fashion-mnist)")
    if channels is not None and channels not in (1, 3):
        raise GancliError(f"--channels must be 1 or 3, got {channels}")
    if split not in ("train", "test"):
        raise GancliError(f"--split must be train or test, got {split!r}")
    data = _open(source, resolution=resolution, channels=channels, split=split, hub_info={})
    if labeled is not None:
        if data.labels is None if isinstance(data, TensorData) else not data.has_labels:
            raise GancliError(f"--labeled needs labelled data, but {source!r} has no labels")
        if not isinstance(data, TensorData):
            raise GancliError("--labeled needs a dataset that fits in memory")
        data.labels = keep_labels_per_class(data.labels, labeled, seed)
    if limit is not None:
        if limit < 1:
            raise GancliError(f"data.limit must be at least 1 example, got {limit}")
        if limit < len(data):
            import torch

            chosen = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:limit].sort().values
            data = data.subset(chosen)
    if mirror:
        if data.spec.kind != "image":
            raise GancliError(f"data.mirror flips images left to right; {source!r} holds {data.spec.kind}")
        data = data.mirrored()
    return data


@dataclass(frozen=True)
class ResolvedData:
    """A dataset and its identity: where it came from, which split, and a fingerprint of what was read."""

    dataset: Dataset
    identity: dict


def resolve_data(
    source: str, *, resolution: Optional[int] = None, channels: Optional[int] = None, split: str = "train"
) -> ResolvedData:
    """`load_data` plus `locate_source`'s identity, completed with the number of examples and a fingerprint
    of the data read: the bytes of the files (or, for large folders, their names, sizes and modification
    times), the Hugging Face dataset's own fingerprint and revision, or the toy's seed."""
    if split not in SPLITS:
        raise GancliError(f"--split must be train or test, got {split!r}")
    hub_info: dict = {}
    dataset = _open(source, resolution=resolution, channels=channels, split=split, hub_info=hub_info)
    identity = {**locate_source(source, split), "examples": len(dataset), "loader": LOADER_RESIZE, **hub_info}
    identity.update(source_fingerprint(identity, split))
    return ResolvedData(dataset, identity)


def _open(source: str, *, resolution, channels, split, hub_info: dict) -> Dataset:
    if source in toys.TOYS:
        return toys.toy_data(source, toys.seed_for_split(split))
    path = Path(source).expanduser()
    if path.exists():
        return open_path(path, resolution=resolution, channels=channels, split=split)
    if source in ALIASES:
        return open_alias(source, resolution=resolution, channels=channels, split=split, hub_info=hub_info)
    if looks_like_path(source):
        raise GancliError(f"data path {source} does not exist; check the path")
    if "/" in source:
        return open_hub(source, resolution=resolution, channels=channels, split=split, hub_info=hub_info)
    raise GancliError(
        f"unknown data source {source!r}; give a folder, an .npz or IDX file, a Hugging Face id (owner/name), "
        f"or one of: {', '.join([*ALIASES, *toys.TOYS])}"
    )
