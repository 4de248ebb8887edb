"""Feature extractors: the FID Inception network and gancli's trainable domain classifiers.

Every extractor has a `name`, the `sha256` of its weights file (part of every reported number's protocol
and of the reference-statistics cache key), `feature_dim`, `num_classes`, and
`features(images) -> (features, logits)` working in batches on uint8 pixels or floats in [-1, 1].
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np

from gancli.errors import GancliError


class FeatureExtractor(Protocol):
    name: str
    sha256: str
    feature_dim: int
    num_classes: int

    def features(self, images, *, batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray]: ...


class InceptionExtractor:
    """pool3 features (2048-d) and the 1008 bias-free logits of the TF-compatible FID Inception-v3.

    Grey images are repeated to three channels (as compare_gan and PIL's convert("RGB") do); every image
    is resized to 299×299 with TF1 bilinear semantics inside the network. `sha256` is the published
    `.pth` file's hash, also when the weights come from gancli's converted safetensors copy of it.
    On CPU this network costs about 6 GFLOP per image: tens of thousands of images take hours.
    """

    name = "inception"
    feature_dim = 2048
    num_classes = 1008
    default_batch_size = 50

    def __init__(self, weights_path: str | os.PathLike | None = None, *, device="cpu", allow_download: bool = True):
        from gancli.metrics.inception import FIDInceptionV3
        from gancli.metrics.inception_weights import INCEPTION_WEIGHTS_SHA256, load_inception_state_dict

        self.sha256 = INCEPTION_WEIGHTS_SHA256
        self.device = device
        self.network = FIDInceptionV3()
        self.network.load_state_dict(load_inception_state_dict(weights_path, allow_download=allow_download))
        self.network.eval().requires_grad_(False).to(device)

    def features(self, images, *, batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        from gancli.metrics.image_batches import match_channels, to_pixels

        return run_in_batches(
            lambda batch: self.network(match_channels(to_pixels(batch), 3).to(self.device)),
            images,
            batch_size or self.default_batch_size,
        )


def run_in_batches(forward, images, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate `forward(batch) -> (features, logits)` over slices of `images`, as float32 numpy."""
    import torch

    from gancli.metrics.image_batches import batch_slices

    features, logits = [], []
    with torch.inference_mode():
        for rows in batch_slices(len(images), batch_size):
            batch_features, batch_logits = forward(images[rows])
            features.append(batch_features.float().cpu().numpy())
            logits.append(batch_logits.float().cpu().numpy())
    if not features:
        raise ValueError("no images to extract features from")
    return np.concatenate(features), np.concatenate(logits)


def get_extractor(
    name_or_path: str | os.PathLike,
    *,
    inception_weights: str | os.PathLike | None = None,
    device="cpu",
    allow_download: bool = True,
) -> FeatureExtractor:
    """"inception", or the path of a domain-classifier extractor saved by `save_extractor`."""
    if str(name_or_path) == InceptionExtractor.name:
        return InceptionExtractor(inception_weights, device=device, allow_download=allow_download)
    path = Path(name_or_path).expanduser()
    if path.is_file():
        from gancli.metrics.classifier import load_extractor

        return load_extractor(path, device=device)
    raise GancliError(
        f"unknown feature extractor {str(name_or_path)!r}: use 'inception' or the path of an extractor "
        "file written by gancli.metrics.classifier.save_extractor"
    )
