"""Local paths as data: image folders (class subfolders as labels), train/test split folders, IDX and .npz
files, and the memory-mapped resized copy of a large folder."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import torch

from gancli.data.arrays import find_idx_pair, from_arrays, labels_beside, open_npz, read_idx, read_idx_pair
from gancli.data.fingerprints import LOADER_RESIZE, folder_fingerprint
from gancli.data.images import MATERIALIZE_LIMIT_BYTES, Dataset, LazyImages, TensorData, pil_to_tensor, stack
from gancli.data.spec import DataSpec
from gancli.errors import GancliError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
SPLITS = ("train", "test")


def open_path(path: Path, *, resolution, channels, split) -> Dataset:
    if path.is_dir():
        idx = find_idx_pair(path, split)
        if idx is not None:
            return from_arrays(*read_idx_pair(*idx), name=path.name, resolution=resolution, channels=channels)
        splits = split_folders(path)
        if splits is not None:
            return _open_folder(splits[split], resolution=resolution, channels=channels, name=path.name)
        return _open_folder(path, resolution=resolution, channels=channels)
    suffixes = "".join(path.suffixes[-2:]).lower()
    if path.suffix.lower() == ".npz":
        return open_npz(path, resolution=resolution, channels=channels)
    if "idx" in path.name or suffixes.endswith("ubyte.gz") or path.name.endswith("ubyte"):
        images = read_idx(path)
        labels_path = labels_beside(path)
        labels = read_idx(labels_path) if labels_path else None
        return from_arrays(images, labels, name=path.stem, resolution=resolution, channels=channels)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise GancliError(f"{path} is a single image; pass the folder that holds your images")
    raise GancliError(f"cannot read {path}: expected a folder of images, an .npz file or an IDX (MNIST-format) file")


def looks_like_path(source: str) -> bool:
    return source.startswith((".", "/", "~")) or Path(source).suffix.lower() in {".npz", ".gz", ".idx", *IMAGE_SUFFIXES}


def split_folders(folder: Path) -> Optional[dict[str, Path]]:
    """{"train": folder/train, "test": folder/test} when the folder holds both: splits, not two classes."""
    try:
        children = {child.name.lower(): child for child in folder.iterdir() if child.is_dir()}
    except OSError:
        return None
    if all(split in children for split in SPLITS):
        return {split: children[split] for split in SPLITS}
    return None


def _scan_folder(root: Path) -> tuple[list[Path], list[int], list[str], int]:
    files, skipped = [], 0
    for path in sorted(root.rglob("*")):
        if path.is_file():
            if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith("."):
                files.append(path)
            else:
                skipped += 1
    subdirs = sorted({p.relative_to(root).parts[0] for p in files if len(p.relative_to(root).parts) > 1})
    at_root = any(len(p.relative_to(root).parts) == 1 for p in files)
    if subdirs and not at_root and len(subdirs) > 1:
        index = {name: i for i, name in enumerate(subdirs)}
        labels = [index[p.relative_to(root).parts[0]] for p in files]
        return files, labels, subdirs, skipped
    return files, [], [], skipped


def _open_folder(root: Path, *, resolution, channels, name: Optional[str] = None) -> Dataset:
    from PIL import Image, UnidentifiedImageError

    from gancli.data.resized_cache import index_progress

    files, labels, class_names, skipped = _scan_folder(root)
    readable, readable_labels, sizes, modes = [], [], [], []
    progress = index_progress(len(files))
    for i, path in enumerate(files):
        progress(i)
        try:
            with Image.open(path) as im:
                sizes.append(im.size)
                modes.append(im.mode)
        except (UnidentifiedImageError, OSError, ValueError):
            skipped += 1
            continue
        readable.append(path)
        if labels:
            readable_labels.append(labels[i])
    if not readable:
        raise GancliError(f"no readable images in {root} (skipped {skipped} other files); point --data at your image folder")
    if skipped:
        _note(f"{root}: skipped {skipped} unreadable or non-image files")
    channels = channels or (1 if all(m in ("L", "1", "I", "I;16", "LA") for m in modes) else 3)
    resolution = resolution or min(min(s) for s in sizes)
    spec = DataSpec(
        kind="image", channels=channels, resolution=resolution, num_classes=len(class_names), name=name or root.name,
        class_names=tuple(class_names),
    )

    def load(index: int) -> tuple[torch.Tensor, int]:
        with Image.open(readable[index]) as im:
            im.load()
            tensor = pil_to_tensor(im, channels, resolution)
        return tensor, (readable_labels[index] if readable_labels else -1)

    lazy = LazyImages(spec, len(readable), load, has_labels=bool(readable_labels))
    if len(readable) * channels * resolution * resolution > MATERIALIZE_LIMIT_BYTES:
        if os.environ.get("GANCLI_RESIZED_CACHE", "1").strip().lower() in ("0", "false", "no"):
            return lazy
        return _resized_copies(root, spec, readable, load, bool(readable_labels))
    decoded, kept_labels = [], []
    for i in range(len(readable)):
        try:
            tensor, label = load(i)
        except (OSError, ValueError, SyntaxError):  # truncated file: header fine, pixels not
            skipped += 1
            continue
        decoded.append(tensor)
        kept_labels.append(label)
    if not decoded:
        raise GancliError(f"no readable images in {root}")
    label_tensor = torch.tensor(kept_labels, dtype=torch.int64) if readable_labels else None
    return TensorData(spec, stack(decoded), label_tensor)


def _resized_copies(root: Path, spec: DataSpec, readable: list[Path], load, labelled: bool) -> TensorData:
    """A large folder decoded once into a memory-mapped uint8 copy at the training size (gancli.data.resized_cache)."""
    from gancli.data.resized_cache import cache_path, load_or_build
    from gancli.data.stream import default_workers

    path = cache_path(root, folder_fingerprint(root), spec.resolution, spec.channels, LOADER_RESIZE)
    workers = default_workers(LazyImages(spec, 0, load, labelled))
    values, labels, skipped = load_or_build(path, len(readable), tuple(spec.shape), load, workers=workers,
                                            labelled=labelled)
    if skipped:
        _note(f"{root}: skipped {skipped} images whose pixels could not be decoded")
    return TensorData(spec, values, labels)


def _note(message: str) -> None:
    import sys

    print(f"note: {message}", file=sys.stderr)
