"""A small CNN classifier that anyone can train offline and use as a domain feature extractor.

Inception features are the published standard but need a 95 MB download and describe ImageNet photos;
for MNIST-like data a classifier trained on the domain gives features that are cheap and meaningful
("Fréchet classifier distance"). Its numbers are NOT comparable with Inception FID/IS: they are reported
under the extractor's own name and sha256.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gancli.errors import GancliError
from gancli.metrics._files import sha256_of_bytes, write_bytes_atomically
from gancli.metrics.batched_features import run_in_batches
from gancli.metrics.image_batches import batch_slices, match_channels, to_pixels

ARCHITECTURE = "gancli-small-cnn/1"
# Bump when SmallCNN.prepare or forward changes what a saved extractor computes (part of the cache key).
CODE_VERSION = "gancli-small-cnn/1 (bilinear antialiased resize, x / 127.5 - 1)"
EXTRACTOR_FORMAT = "gancli-extractor/1"


class SmallCNN(nn.Module):
    """Three conv–BN–ReLU–maxpool stages, a `feature_dim` ReLU embedding (the features), a linear head."""

    def __init__(
        self,
        channels: int = 1,
        resolution: int = 32,
        num_classes: int = 10,
        widths: tuple[int, ...] = (16, 32, 64),
        feature_dim: int = 128,
    ) -> None:
        super().__init__()
        if resolution % (2 ** len(widths)):
            raise ValueError(f"resolution {resolution} must be divisible by {2 ** len(widths)}")
        self.channels, self.resolution, self.num_classes = channels, resolution, num_classes
        self.widths, self.feature_dim = tuple(widths), feature_dim
        stages, previous = [], channels
        for width in widths:
            stages += [nn.Conv2d(previous, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2)]
            previous = width
        self.body = nn.Sequential(*stages)
        side = resolution // 2 ** len(widths)
        self.embedding = nn.Linear(previous * side * side, feature_dim)
        self.head = nn.Linear(feature_dim, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = F.relu(self.embedding(torch.flatten(self.body(x), 1)))
        return features, self.head(features)

    def config(self) -> dict:
        return {
            "architecture": ARCHITECTURE,
            "channels": self.channels,
            "resolution": self.resolution,
            "num_classes": self.num_classes,
            "widths": list(self.widths),
            "feature_dim": self.feature_dim,
        }

    def prepare(self, images) -> torch.Tensor:
        """uint8 pixels or [-1, 1] floats → this network's channels and resolution, in [-1, 1]."""
        pixels = match_channels(to_pixels(images), self.channels)
        if pixels.shape[-2:] != (self.resolution, self.resolution):
            pixels = F.interpolate(
                pixels, size=(self.resolution, self.resolution), mode="bilinear", align_corners=False, antialias=True
            )
        return pixels / 127.5 - 1.0


def train_extractor(
    images,
    labels,
    test_images,
    test_labels,
    *,
    steps: int,
    batch_size: int = 128,
    seed: int = 0,
    learning_rate: float = 2e-3,
    resolution: int = 32,
    widths: tuple[int, ...] = (16, 32, 64),
    feature_dim: int = 128,
    progress=None,
) -> tuple[SmallCNN, float]:
    """Train a SmallCNN with Adam and a cosine learning-rate decay; return it (in eval mode) and its
    accuracy on the test set. Images are uint8 pixels or floats in [-1, 1], NCHW or NHW; labels are
    integer classes. `progress(step, loss)` is called every 100 steps when given. Same seed, same model.
    """
    labels_t = torch.from_numpy(np.array(labels, dtype=np.int64))
    channels = 1 if np.ndim(images) == 3 else int(np.shape(images)[1])
    num_classes = int(labels_t.max()) + 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SmallCNN(channels, resolution, num_classes, widths, feature_dim)
    order = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / steps)))
    model.train()
    permutation, position = torch.randperm(len(labels_t), generator=order), 0
    for step in range(steps):
        if position + batch_size > len(permutation):
            permutation, position = torch.randperm(len(labels_t), generator=order), 0
        rows = permutation[position : position + batch_size]
        position += batch_size
        _, logits = model(model.prepare(_take(images, rows)))
        loss = F.cross_entropy(logits, labels_t[rows])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if progress is not None and (step + 1) % 100 == 0:
            progress(step + 1, loss.item())
    model.eval()
    return model, classification_accuracy(model, test_images, test_labels)


def classification_accuracy(model: SmallCNN, images, labels, batch_size: int = 1000) -> float:
    labels_t = torch.from_numpy(np.array(labels, dtype=np.int64))
    correct = 0
    with torch.inference_mode():
        for rows in batch_slices(len(labels_t), batch_size):
            _, logits = model(model.prepare(images[rows]))
            correct += int((logits.argmax(dim=1) == labels_t[rows]).sum())
    return correct / len(labels_t)


def save_extractor(model: SmallCNN, path: str | os.PathLike, meta: dict) -> Path:
    """Write weights and JSON metadata (architecture, channels, resolution, classes, plus `meta`: at least
    `name`, and ideally `test_accuracy` and `training_data`) as one safetensors file, atomically."""
    from safetensors.torch import save

    name = meta.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("meta must contain a non-empty 'name' for the extractor, e.g. 'fmnist-cnn'")
    description = {**meta, **model.config(), "format": EXTRACTOR_FORMAT}
    tensors = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    data = save(tensors, metadata={"format": EXTRACTOR_FORMAT, "gancli_extractor": json.dumps(description, sort_keys=True)})
    return write_bytes_atomically(path, data)


class ClassifierExtractor:
    """A saved SmallCNN used as a feature extractor: penultimate features and class logits."""

    default_batch_size = 500

    def __init__(self, network: SmallCNN, metadata: dict, sha256: str, device="cpu") -> None:
        self.network = network.eval().requires_grad_(False).to(device)
        self.metadata = metadata
        self.name = str(metadata["name"])
        self.sha256 = sha256
        self.code_version = CODE_VERSION
        self.feature_dim = network.feature_dim
        self.num_classes = network.num_classes
        self.device = device

    def features(self, images, *, batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        return run_in_batches(
            lambda batch: self.network(self.network.prepare(batch).to(self.device)),
            images,
            batch_size or self.default_batch_size,
        )


def load_extractor(path: str | os.PathLike, *, device="cpu") -> ClassifierExtractor:
    """Rebuild an extractor written by `save_extractor`; its sha256 is the file's."""
    from safetensors.torch import load

    source = Path(path)
    try:
        data = source.read_bytes()
    except OSError as error:
        raise GancliError(f"cannot read feature extractor {source}: {error.strerror or error}") from error
    header = _safetensors_metadata(data)
    if header is None or header.get("format") != EXTRACTOR_FORMAT or "gancli_extractor" not in header:
        raise GancliError(
            f"{source} is not a gancli feature extractor (no gancli extractor metadata); "
            "train one with gancli.metrics.classifier.train_extractor and save it with save_extractor"
        )
    description = json.loads(header["gancli_extractor"])
    if description.get("architecture") != ARCHITECTURE:
        raise GancliError(f"{source} uses extractor architecture {description.get('architecture')!r}; this gancli knows {ARCHITECTURE!r}")
    network = SmallCNN(
        description["channels"], description["resolution"], description["num_classes"],
        tuple(description["widths"]), description["feature_dim"],
    )
    network.load_state_dict(load(data))
    return ClassifierExtractor(network, description, sha256_of_bytes(data), device)


def _safetensors_metadata(data: bytes) -> dict | None:
    """The `__metadata__` of a safetensors file (8-byte little-endian header length, JSON header), or None."""
    if len(data) < 8:
        return None
    length = int.from_bytes(data[:8], "little")
    if length > len(data) - 8:
        return None
    try:
        header = json.loads(data[8 : 8 + length])
    except ValueError:
        return None
    return header.get("__metadata__") or {} if isinstance(header, dict) else None


def _take(images, rows: torch.Tensor):
    if isinstance(images, torch.Tensor):
        return images[rows]
    return np.asarray(images)[rows.numpy()]
