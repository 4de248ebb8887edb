"""A data source's identity without reading its data (format, location, splits) and, once read, its fingerprint."""
from __future__ import annotations

from pathlib import Path

from gancli.data.arrays import find_idx_pair, labels_beside
from gancli.data.fingerprints import files_sha256, folder_fingerprint
from gancli.data.folders import looks_like_path, split_folders
from gancli.data.hub_datasets import ALIASES, alias_folder
from gancli.data.toys import TOY_POINTS, TOYS, seed_for_split


def locate_source(source: str, split: str = "train") -> dict:
    """Where `source` resolves, without reading any data: format, location (resolved path, `hub:ID` or
    `toy:NAME`), whether it has train/test splits and so which split `split` reads ("whole" for a source
    that gives the same examples for every split), and for an alias whether it resolved locally or to the hub.
    Two sources with equal location and split read the same examples."""
    if source in TOYS:
        found = {"format": "toy", "location": f"toy:{source}", "has_splits": True}
    elif (path := Path(source).expanduser()).exists():
        found = _locate_path(path.resolve())
    elif source in ALIASES:
        local = alias_folder(source)
        if local is not None:
            found = {**_locate_path(local.resolve()), "alias": source, "alias_resolved": "local"}
        else:
            found = {"format": "hub", "location": f"hub:{ALIASES[source][1]}", "has_splits": True, "alias": source,
                     "alias_resolved": "hub"}
    elif "/" in source and not looks_like_path(source):
        found = {"format": "hub", "location": f"hub:{source}", "has_splits": True}
    else:
        found = {"format": "missing", "location": source, "has_splits": False}
    return {"source": source, **found, "split": split if found["has_splits"] else "whole"}


def _locate_path(path: Path) -> dict:
    if path.is_dir():
        if find_idx_pair(path, "train") and find_idx_pair(path, "test"):
            return {"format": "idx-folder", "location": str(path), "has_splits": True}
        if split_folders(path):
            return {"format": "split-folders", "location": str(path), "has_splits": True}
        return {"format": "image-folder", "location": str(path), "has_splits": False}
    kind = "npz" if path.suffix.lower() == ".npz" else "file"
    return {"format": kind, "location": str(path), "has_splits": False}


def source_fingerprint(identity: dict, split: str) -> dict:
    kind = identity["format"]
    if kind == "toy":
        return {"fingerprint": f"seed {10_007 + seed_for_split(split)}, {TOY_POINTS} points", "fingerprint_of": "toy sampler seed"}
    if kind == "hub":
        return {"fingerprint": identity.get("hub_fingerprint"), "fingerprint_of": "the Hugging Face dataset's fingerprint"}
    location = Path(identity["location"])
    if kind == "idx-folder":
        return {"fingerprint": files_sha256([p for p in find_idx_pair(location, split) if p.is_file()], location),
                "fingerprint_of": "file contents"}
    if kind == "split-folders":
        location = split_folders(location)[split]
    if location.is_dir():
        return folder_fingerprint(location)
    files = [location] + ([labels] if (labels := labels_beside(location)) else [])
    return {"fingerprint": files_sha256(files, location.parent), "fingerprint_of": "file contents"}
