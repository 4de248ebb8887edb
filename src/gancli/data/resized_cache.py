"""Resized copies of a large image folder, decoded once into a uint8 array on disk.

A folder too big to decode into memory (FFHQ: 70,000 PNGs of 1024²) would otherwise be
decoded and resized again in every epoch. The first run writes every image, at the
training resolution and channels, into ``<gancli cache>/resized/<folder>-<res>px-<c>ch-<key>.npy``
(a plain .npy read with ``allow_pickle=False``, memory-mapped) plus a ``.json`` with the
labels; later runs map it and index it directly. The key covers the folder's resolved
path and fingerprint (names, sizes, modification times), the resolution, the channels and
the loader's resize version, so a changed folder gets a new copy.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch


def cache_folder() -> Path:
    from gancli.metrics._files import default_cache_dir

    return default_cache_dir() / "resized"


def cache_path(root: Path, identity: dict, resolution: int, channels: int, loader_version: str) -> Path:
    key = hashlib.sha256(json.dumps(
        {"root": str(Path(root).resolve()), **identity, "resolution": resolution, "channels": channels,
         "loader": loader_version}, sort_keys=True).encode()).hexdigest()[:16]
    return cache_folder() / f"{Path(root).name}-{resolution}px-{channels}ch-{key}.npy"


def load_or_build(
    path: Path, count: int, shape: tuple[int, int, int], load: Callable[[int], tuple[torch.Tensor, int]],
    *, workers: int = 0, labelled: bool,
) -> tuple[torch.Tensor, Optional[torch.Tensor], int]:
    """(images uint8 (N, C, H, W) memory-mapped, labels or None, images skipped as unreadable)."""
    meta_path = path.with_suffix(".json")
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        images = np.load(path, mmap_mode="c", allow_pickle=False)
        if tuple(images.shape[1:]) == tuple(shape) and meta.get("files") == count:
            return _as_tensors(images, meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    images = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(count, *shape))
    labels: list[int] = []
    kept, started, last = 0, time.perf_counter(), 0.0
    print(f"data: writing resized copies of {count} images to {path} (once; later runs map it)", file=sys.stderr)
    for result in _decoded(load, count, workers):
        if result is not None:
            tensor, label = result
            images[kept] = tensor.numpy()
            labels.append(int(label))
            kept += 1
        now = time.perf_counter()
        done = kept
        if now - last > 5:
            last = now
            rate = max(done, 1) / (now - started)
            print(f"data: {done}/{count} images resized ({rate:.0f}/s, {(count - done) / rate:.0f} s left)",
                  file=sys.stderr)
    images.flush()
    del images
    os.replace(tmp, path)
    meta = {"files": count, "kept": kept, "labels": labels if labelled else None}
    meta_path.write_text(json.dumps(meta))
    return _as_tensors(np.load(path, mmap_mode="c", allow_pickle=False), meta)


def _as_tensors(images: np.ndarray, meta: dict):
    kept = int(meta["kept"])
    values = torch.from_numpy(images[:kept])
    labels = torch.tensor(meta["labels"], dtype=torch.int64) if meta.get("labels") is not None else None
    return values, labels, int(meta["files"]) - kept


def _decoded(load, count: int, workers: int):
    """load(i) for every i, in order; None for an image whose pixels cannot be decoded."""
    def safe(i: int):
        try:
            return load(i)
        except (OSError, ValueError, SyntaxError):
            return None

    if workers <= 1:
        for i in range(count):
            yield safe(i)
        return
    dataset = _Indexed(safe, count)
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=workers,
                                         collate_fn=lambda item: item, prefetch_factor=8)
    yield from loader


class _Indexed(torch.utils.data.Dataset):
    def __init__(self, fn, count: int) -> None:
        self.fn, self.count = fn, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int):
        return self.fn(i)


def index_progress(total: int) -> Callable[[int], None]:
    """A callback printing 'indexing: i/N files' every few seconds for big folders (silent for small ones)."""
    state = {"last": time.perf_counter()}

    def tick(i: int) -> None:
        if total < 2000:
            return
        now = time.perf_counter()
        if now - state["last"] > 3:
            state["last"] = now
            print(f"data: indexing {i}/{total} files", file=sys.stderr)

    return tick
