"""Resolve ``--data`` into a dataset: folders, IDX, npz, Hugging Face ids, aliases, 2-D toys."""
from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from gancli.data.images import (
    MATERIALIZE_LIMIT_BYTES,
    LazyImages,
    TensorData,
    center_crop_resize,
    convert_channels,
    keep_labels_per_class,
    pil_to_tensor,
    stack,
)
from gancli.data.spec import DataSpec
from gancli.errors import GancliError

Dataset = Union[TensorData, LazyImages]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
TOY_POINTS = 100_000  # points drawn once from a toy distribution

# alias -> (local folder names tried under the search roots, Hugging Face dataset id)
ALIASES: dict[str, tuple[tuple[str, ...], str]] = {
    "fashion-mnist": (("fashion-mnist", "fashion_mnist"), "zalando-datasets/fashion_mnist"),
    "mnist": (("mnist",), "ylecun/mnist"),
    "cifar10": (("cifar10", "cifar-10"), "uoft-cs/cifar10"),
    "ffhq": (("ffhq",), "bitmind/ffhq-256"),  # FFHQ's 70,000 faces at 256×256 (parquet, an "image" column)
    "celeba": (("celeba",), "flwrlabs/celeba"),
}
SPLITS = ("train", "test")
# Bump when gancli.data.images changes how files or arrays become uint8 pixels (crop, resize, channels):
# cached reference features depend on it.
LOADER_RESIZE = "gancli-loader/1: square centre crop; arrays: torch bilinear antialiased, rounded; files: PIL Lanczos"
# Folders up to this size are fingerprinted by their bytes; larger ones by file names, sizes and mtimes.
CONTENT_FINGERPRINT_LIMIT_BYTES = 256 << 20
ALIAS_DEFAULT_RESOLUTION = {"fashion-mnist": 28, "mnist": 28, "cifar10": 32, "ffhq": 256, "celeba": 64}
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


def data_roots() -> list[Path]:
    roots = []
    if env := os.environ.get("GANCLI_DATA_DIR"):
        roots.append(Path(env).expanduser())
    roots += [Path("/usr/share/datasets"), Path.home() / ".cache" / "gancli" / "datasets"]
    return roots


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
    identity.update(_fingerprint(identity, split))
    return ResolvedData(dataset, identity)


def locate_source(source: str, split: str = "train") -> dict:
    """Where `source` resolves, without reading any data: format, location (resolved path, `hub:ID` or
    `toy:NAME`), whether it has train/test splits and so which split `split` reads ("whole" for a source
    that gives the same examples for every split), and for an alias whether it resolved locally or to the hub.
    Two sources with equal location and split read the same examples."""
    from gancli.data import toys

    if source in toys.TOYS:
        found = {"format": "toy", "location": f"toy:{source}", "has_splits": True}
    elif (path := Path(source).expanduser()).exists():
        found = _locate_path(path.resolve())
    elif source in ALIASES:
        local = _alias_folder(source)
        if local is not None:
            found = {**_locate_path(local.resolve()), "alias": source, "alias_resolved": "local"}
        else:
            found = {"format": "hub", "location": f"hub:{ALIASES[source][1]}", "has_splits": True, "alias": source,
                     "alias_resolved": "hub"}
    elif "/" in source and not _looks_like_path(source):
        found = {"format": "hub", "location": f"hub:{source}", "has_splits": True}
    else:
        found = {"format": "missing", "location": source, "has_splits": False}
    return {"source": source, **found, "split": split if found["has_splits"] else "whole"}


def _locate_path(path: Path) -> dict:
    if path.is_dir():
        if _find_idx_pair(path, "train") and _find_idx_pair(path, "test"):
            return {"format": "idx-folder", "location": str(path), "has_splits": True}
        if _split_folders(path):
            return {"format": "split-folders", "location": str(path), "has_splits": True}
        return {"format": "image-folder", "location": str(path), "has_splits": False}
    kind = "npz" if path.suffix.lower() == ".npz" else "file"
    return {"format": kind, "location": str(path), "has_splits": False}


def _split_folders(folder: Path) -> Optional[dict[str, Path]]:
    """{"train": folder/train, "test": folder/test} when the folder holds both: splits, not two classes."""
    try:
        children = {child.name.lower(): child for child in folder.iterdir() if child.is_dir()}
    except OSError:
        return None
    if all(split in children for split in SPLITS):
        return {split: children[split] for split in SPLITS}
    return None


def _fingerprint(identity: dict, split: str) -> dict:
    kind = identity["format"]
    if kind == "toy":
        return {"fingerprint": f"seed {10_007 + seed_for_split(split)}, {TOY_POINTS} points", "fingerprint_of": "toy sampler seed"}
    if kind == "hub":
        return {"fingerprint": identity.get("hub_fingerprint"), "fingerprint_of": "the Hugging Face dataset's fingerprint"}
    location = Path(identity["location"])
    if kind == "idx-folder":
        return {"fingerprint": _files_sha256([p for p in _find_idx_pair(location, split) if p.is_file()], location),
                "fingerprint_of": "file contents"}
    if kind == "split-folders":
        location = _split_folders(location)[split]
    if location.is_dir():
        return _folder_fingerprint(location)
    files = [location] + ([labels] if (labels := _labels_beside(location)) else [])
    return {"fingerprint": _files_sha256(files, location.parent), "fingerprint_of": "file contents"}


def _folder_fingerprint(folder: Path) -> dict:
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    if sum(path.stat().st_size for path in files) <= CONTENT_FINGERPRINT_LIMIT_BYTES:
        return {"fingerprint": _files_sha256(files, folder), "fingerprint_of": "file contents", "files": len(files)}
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(folder).as_posix()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return {"fingerprint": digest.hexdigest(), "fingerprint_of": "file names, sizes and modification times",
            "files": len(files)}


def _files_sha256(files: list[Path], root: Path) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(root).as_posix()}\n".encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _open(source: str, *, resolution, channels, split, hub_info: dict) -> Dataset:
    from gancli.data import toys

    if source in toys.TOYS:
        return _toy(source, seed_for_split(split))
    path = Path(source).expanduser()
    if path.exists():
        return _open_path(path, resolution=resolution, channels=channels, split=split)
    if source in ALIASES:
        return _open_alias(source, resolution=resolution, channels=channels, split=split, hub_info=hub_info)
    if _looks_like_path(source):
        raise GancliError(f"data path {source} does not exist; check the path")
    if "/" in source:
        return _open_hub(source, resolution=resolution, channels=channels, split=split, hub_info=hub_info)
    raise GancliError(
        f"unknown data source {source!r}; give a folder, an .npz or IDX file, a Hugging Face id (owner/name), "
        f"or one of: {', '.join([*ALIASES, *toys.TOYS])}"
    )


def _looks_like_path(source: str) -> bool:
    return source.startswith((".", "/", "~")) or Path(source).suffix.lower() in {".npz", ".gz", ".idx", *IMAGE_SUFFIXES}


def seed_for_split(split: str) -> int:
    return {"train": 0, "test": 1}[split]


def _toy(name: str, seed: int) -> TensorData:
    from gancli.data import toys

    g = torch.Generator().manual_seed(10_007 + seed)
    points = toys.TOYS[name].sample(TOY_POINTS, g).float()
    return TensorData(DataSpec(kind="points", dim=points.shape[1], name=name), points)


# ---------------------------------------------------------------- files and folders


def _open_path(path: Path, *, resolution, channels, split) -> Dataset:
    if path.is_dir():
        idx = _find_idx_pair(path, split)
        if idx is not None:
            return _from_arrays(*_read_idx_pair(*idx), name=path.name, resolution=resolution, channels=channels)
        splits = _split_folders(path)
        if splits is not None:
            return _open_folder(splits[split], resolution=resolution, channels=channels, name=path.name)
        return _open_folder(path, resolution=resolution, channels=channels)
    suffixes = "".join(path.suffixes[-2:]).lower()
    if path.suffix.lower() == ".npz":
        return _open_npz(path, resolution=resolution, channels=channels)
    if "idx" in path.name or suffixes.endswith("ubyte.gz") or path.name.endswith("ubyte"):
        images = read_idx(path)
        labels_path = _labels_beside(path)
        labels = read_idx(labels_path) if labels_path else None
        return _from_arrays(images, labels, name=path.stem, resolution=resolution, channels=channels)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise GancliError(f"{path} is a single image; pass the folder that holds your images")
    raise GancliError(f"cannot read {path}: expected a folder of images, an .npz file or an IDX (MNIST-format) file")


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise GancliError(f"cannot read IDX file {path}: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise GancliError(f"{path} is not an IDX file (bad magic number)")
    dtype_code, ndim = raw[2], raw[3]
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if dtype_code not in dtypes:
        raise GancliError(f"{path}: unsupported IDX data type 0x{dtype_code:02x}")
    header = 4 + 4 * ndim
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = int(np.prod(dims)) * np.dtype(dtypes[dtype_code]).itemsize
    if len(raw) - header < expected:
        raise GancliError(f"{path} is truncated: expected {expected} bytes of data, found {len(raw) - header}")
    return np.frombuffer(raw, dtype=dtypes[dtype_code], count=int(np.prod(dims)), offset=header).reshape(dims)


def _find_idx_pair(folder: Path, split: str) -> Optional[tuple[Path, Path]]:
    prefix = {"train": "train", "test": "t10k"}[split]
    for suffix in (".gz", ""):
        images = folder / f"{prefix}-images-idx3-ubyte{suffix}"
        labels = folder / f"{prefix}-labels-idx1-ubyte{suffix}"
        if images.is_file():
            return images, labels
    return None


def _read_idx_pair(images: Path, labels: Path):
    return read_idx(images), (read_idx(labels) if labels.is_file() else None)


def _labels_beside(images: Path) -> Optional[Path]:
    candidate = images.parent / images.name.replace("images-idx3", "labels-idx1")
    return candidate if candidate != images and candidate.is_file() else None


def _open_npz(path: Path, *, resolution, channels) -> TensorData:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise GancliError(f"cannot read {path} as .npz: {exc}") from None
    labels = next((arrays[k] for k in ("labels", "y", "label") if k in arrays), None)
    if "points" in arrays:
        points = np.asarray(arrays["points"], dtype=np.float32)
        if points.ndim != 2:
            raise GancliError(f"{path}: 'points' must have shape (N, D), got {points.shape}")
        return TensorData(
            DataSpec(kind="points", dim=points.shape[1], name=path.stem), torch.from_numpy(points.copy())
        )
    key = next((k for k in ("images", "x", "arr_0") if k in arrays), None)
    if key is None:
        raise GancliError(f"{path} has no 'images', 'x' or 'points' array (found: {', '.join(arrays) or 'none'})")
    return _from_arrays(arrays[key], labels, name=path.stem, resolution=resolution, channels=channels)


def _from_arrays(images: np.ndarray, labels, *, name: str, resolution, channels, class_names=()) -> TensorData:
    images = np.asarray(images)
    if images.dtype != np.uint8:
        lo, hi = float(images.min()), float(images.max())
        scaled = (images + 1.0) * 127.5 if lo < 0 else (images * 255.0 if hi <= 1.0 else images)
        images = np.clip(np.round(scaled), 0, 255).astype(np.uint8)
    if images.ndim == 3:
        images = images[:, None]
    elif images.ndim == 4 and images.shape[-1] in (1, 3, 4) and images.shape[1] not in (1, 3, 4):
        images = images.transpose(0, 3, 1, 2)
    if images.ndim != 4 or images.shape[1] not in (1, 3, 4):
        raise GancliError(f"{name}: images must be (N,H,W), (N,H,W,C) or (N,C,H,W) with C in 1,3,4; got {images.shape}")
    if len(images) == 0:
        raise GancliError(f"{name} holds no images")
    tensor = torch.from_numpy(np.array(images, copy=True, order="C"))
    channels = channels or (1 if tensor.shape[1] == 1 else 3)
    tensor = convert_channels(tensor, channels)
    resolution = resolution or min(tensor.shape[-2:])
    tensor = center_crop_resize(tensor, resolution)
    label_tensor = None
    num_classes = 0
    if labels is not None:
        labels = np.asarray(labels).astype(np.int64).reshape(-1)
        if len(labels) != len(tensor):
            raise GancliError(f"{name}: {len(labels)} labels for {len(tensor)} images")
        label_tensor = torch.from_numpy(labels.copy())
        num_classes = int(labels.max()) + 1
    if name.replace("_", "-").startswith("fashion-mnist") and num_classes == 10:
        class_names = FASHION_MNIST_CLASSES
    spec = DataSpec(
        kind="image", channels=channels, resolution=resolution, num_classes=num_classes, name=name,
        class_names=tuple(class_names),
    )
    return TensorData(spec, tensor, label_tensor)


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

    path = cache_path(root, _folder_fingerprint(root), spec.resolution, spec.channels, LOADER_RESIZE)
    workers = default_workers(LazyImages(spec, 0, load, labelled))
    values, labels, skipped = load_or_build(path, len(readable), tuple(spec.shape), load, workers=workers,
                                            labelled=labelled)
    if skipped:
        _note(f"{root}: skipped {skipped} images whose pixels could not be decoded")
    return TensorData(spec, values, labels)


def _note(message: str) -> None:
    import sys

    print(f"note: {message}", file=sys.stderr)


# ---------------------------------------------------------------- aliases and the hub


def _alias_folder(alias: str) -> Optional[Path]:
    for root in data_roots():
        for folder in ALIASES[alias][0]:
            candidate = root / folder
            if candidate.is_dir():
                return candidate
    return None


def _open_alias(alias: str, *, resolution, channels, split, hub_info: dict) -> Dataset:
    local = _alias_folder(alias)
    if local is not None:
        return _open_path(local, resolution=resolution, channels=channels, split=split)
    return _open_hub(ALIASES[alias][1], resolution=resolution, channels=channels, split=split, alias=alias, hub_info=hub_info)


def _open_hub(dataset_id: str, *, resolution, channels, split, alias: Optional[str] = None, hub_info: dict) -> Dataset:
    what = f"{alias!r} ({dataset_id})" if alias else repr(dataset_id)
    hint = (
        f"put the files in $GANCLI_DATA_DIR/{ALIASES[alias][0][0]} or pass a local folder"
        if alias
        else "check the id, or pass a local folder"
    )
    try:
        import datasets
        from datasets.utils.logging import disable_progress_bar

        disable_progress_bar()
        ds = datasets.load_dataset(dataset_id, split=split)
    except Exception as exc:  # offline, unknown id, or missing split all land here
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GancliError(
            f"could not load Hugging Face dataset {what}: {first_line[:200]}; {hint}"
        ) from None
    hub_info.update(hub_fingerprint=getattr(ds, "_fingerprint", None), revision=_hub_revision(ds))
    return _from_hub_dataset(ds, dataset_id, resolution=resolution, channels=channels)


def _hub_revision(ds) -> Optional[str]:
    """The dataset revision the local cache holds: the hash folder its Arrow files live in, when there is one."""
    for entry in getattr(ds, "cache_files", None) or []:
        parent = Path(entry.get("filename", "")).parent.name
        if parent and all(char in "0123456789abcdef" for char in parent) and len(parent) >= 7:
            return parent
    return None


def _from_hub_dataset(ds, dataset_id: str, *, resolution, channels) -> Dataset:
    columns = ds.column_names
    image_key = next((k for k in ("image", "img", "images") if k in columns), None)
    if image_key is None:
        raise GancliError(f"{dataset_id} has no image column (columns: {', '.join(columns)})")
    label_key = next((k for k in ("label", "labels", "fine_label") if k in columns), None)
    class_names: tuple[str, ...] = ()
    if label_key is not None and hasattr(ds.features[label_key], "names"):
        class_names = tuple(ds.features[label_key].names)
    first = ds[0][image_key]
    channels = channels or (1 if first.mode in ("L", "1") else 3)
    resolution = resolution or min(first.size)
    spec = DataSpec(
        kind="image", channels=channels, resolution=resolution, num_classes=len(class_names),
        name=dataset_id.split("/")[-1], class_names=class_names,
    )

    def load(index: int):
        row = ds[index]
        return pil_to_tensor(row[image_key], channels, resolution), (int(row[label_key]) if label_key else -1)

    lazy = LazyImages(spec, len(ds), load, has_labels=label_key is not None)
    if len(ds) * channels * resolution * resolution > MATERIALIZE_LIMIT_BYTES:
        return lazy
    items = [load(i) for i in range(len(ds))]
    labels = torch.tensor([y for _, y in items], dtype=torch.int64) if label_key else None
    return TensorData(spec, stack([x for x, _ in items]), labels)
