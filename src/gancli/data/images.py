"""Image datasets: uint8 tensors (N, C, H, W) in memory, or decoded lazily from files."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from gancli.data.spec import DataSpec

MATERIALIZE_LIMIT_BYTES = 1 << 30  # decode whole datasets up to 1 GiB into memory once


@dataclass
class TensorData:
    """Everything in memory: the fast path for IDX, npz, 2-D points and small folders."""

    spec: DataSpec
    values: Tensor  # uint8 (N,C,H,W) images or float32 (N,D) points
    labels: Optional[Tensor] = None  # int64 (N,), -1 marks an unlabelled example

    in_memory = True

    def __len__(self) -> int:
        return self.values.shape[0]

    def fetch(self, indices: Tensor) -> tuple[Tensor, Optional[Tensor]]:
        labels = self.labels[indices] if self.labels is not None else None
        return self.values[indices], labels

    def subset(self, indices: Tensor) -> "TensorData":
        return TensorData(self.spec, self.values[indices], self.labels[indices] if self.labels is not None else None)

    def mirrored(self) -> "TensorData":
        """Every image and its left-right mirror image (2N examples)."""
        labels = torch.cat([self.labels, self.labels]) if self.labels is not None else None
        return TensorData(self.spec, torch.cat([self.values, self.values.flip(-1)]), labels)


class LazyImages(torch.utils.data.Dataset):
    """Images decoded on access (large folders, HF datasets); used through a DataLoader."""

    in_memory = False

    def __init__(self, spec: DataSpec, count: int, load: Callable[[int], tuple[Tensor, int]], has_labels: bool):
        self.spec = spec
        self._count = count
        self._load = load
        self.has_labels = has_labels

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self._load(index)

    def subset(self, indices: Tensor) -> "LazyImages":
        chosen = [int(i) for i in indices]
        return LazyImages(self.spec, len(chosen), lambda i: self._load(chosen[i]), self.has_labels)

    def mirrored(self) -> "LazyImages":
        """Every image and its left-right mirror image (2N examples)."""
        count = self._count

        def load(i: int) -> tuple[Tensor, int]:
            image, label = self._load(i % count)
            return (image.flip(-1) if i >= count else image), label

        return LazyImages(self.spec, 2 * count, load, self.has_labels)


Dataset = Union[TensorData, LazyImages]  # what every data source yields


def to_float(images: Tensor) -> Tensor:
    """uint8 [0, 255] → float [-1, 1]."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: Tensor) -> Tensor:
    """float [-1, 1] → uint8 [0, 255], rounded."""
    return images.detach().float().add(1.0).mul(127.5).round_().clamp_(0, 255).to(torch.uint8)


def convert_channels(images: Tensor, channels: int) -> Tensor:
    """(N, C, H, W) uint8 with C in {1, 3, 4} → ``channels`` in {1, 3}; alpha is composited on white."""
    c = images.shape[1]
    if c == 4:
        rgb, alpha = images[:, :3].float(), images[:, 3:].float() / 255.0
        images = (rgb * alpha + 255.0 * (1.0 - alpha)).round().to(torch.uint8)
        c = 3
    if c == channels:
        return images
    if c == 1 and channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    if c == 3 and channels == 1:
        weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        return (images.float() * weights).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
    raise ValueError(f"cannot convert {c} channels to {channels}")


def center_crop_resize(images: Tensor, resolution: int) -> Tensor:
    """Square centre crop then an antialiased resize, for uint8 (N, C, H, W)."""
    h, w = images.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    images = images[..., top : top + side, left : left + side]
    if side == resolution:
        return images.contiguous()
    out = []
    for chunk in images.split(4096):
        x = torch.nn.functional.interpolate(
            chunk.float(), size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=True
        )
        out.append(x.round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out)


def pil_to_tensor(image, channels: int, resolution: int) -> Tensor:
    """A PIL image → uint8 (C, H, W): mode normalised, centre-cropped, resized (Lanczos)."""
    from PIL import Image

    if channels == 1:
        image = image.convert("L") if image.mode not in ("LA", "RGBA", "PA") else _on_white(image).convert("L")
    else:
        image = _on_white(image) if image.mode in ("LA", "RGBA", "PA") or "transparency" in image.info else image
        image = image.convert("RGB")
    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    image = image.crop((left, top, left + side, top + side))
    if side != resolution:
        image = image.resize((resolution, resolution), Image.LANCZOS)
    array = np.asarray(image, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def _on_white(image):
    from PIL import Image

    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def stack(items: Sequence[Tensor]) -> Tensor:
    return torch.stack(list(items)) if items else torch.empty(0, dtype=torch.uint8)


def keep_labels_per_class(labels: Tensor, per_class: int, seed: int) -> Tensor:
    """Semi-supervised setting: keep ``per_class`` labels of each class, mark the rest -1."""
    g = torch.Generator().manual_seed(seed)
    kept = torch.full_like(labels, -1)
    for c in labels.unique().tolist():
        where = (labels == c).nonzero().flatten()
        chosen = where[torch.randperm(len(where), generator=g)[:per_class]]
        kept[chosen] = c
    return kept


def spec_path_name(path: Path) -> str:
    return path.name or str(path)
