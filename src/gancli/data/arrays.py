"""Images held in arrays: IDX files (the MNIST format) and .npz files, into uint8 image (or point) datasets."""
from __future__ import annotations

import gzip
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from gancli.data.images import TensorData, center_crop_resize, convert_channels
from gancli.data.spec import DataSpec
from gancli.errors import GancliError

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


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


def find_idx_pair(folder: Path, split: str) -> Optional[tuple[Path, Path]]:
    prefix = {"train": "train", "test": "t10k"}[split]
    for suffix in (".gz", ""):
        images = folder / f"{prefix}-images-idx3-ubyte{suffix}"
        labels = folder / f"{prefix}-labels-idx1-ubyte{suffix}"
        if images.is_file():
            return images, labels
    return None


def read_idx_pair(images: Path, labels: Path):
    return read_idx(images), (read_idx(labels) if labels.is_file() else None)


def labels_beside(images: Path) -> Optional[Path]:
    candidate = images.parent / images.name.replace("images-idx3", "labels-idx1")
    return candidate if candidate != images and candidate.is_file() else None


def open_npz(path: Path, *, resolution, channels) -> TensorData:
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
    return from_arrays(arrays[key], labels, name=path.stem, resolution=resolution, channels=channels)


def from_arrays(images: np.ndarray, labels, *, name: str, resolution, channels, class_names=()) -> TensorData:
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
