"""Feature extractors: the FID Inception network and gancli's trainable domain classifiers.

Every extractor has a `name`, the `sha256` of its weights file (part of every reported number's protocol
and of the reference-statistics cache key), a `code_version` (bumped whenever gancli's code for the network
or its preprocessing changes what it computes), `feature_dim`, `num_classes`, and
`features(images) -> (features, logits)` working in batches on uint8 pixels or floats in [-1, 1].

On CUDA, features are computed with TF32 off (matmul and cuDNN), as StyleGAN2-ADA's metric code does:
TF32 keeps 10 mantissa bits, enough to move FID in its second decimal.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np

from gancli.errors import GancliError
from gancli.metrics.batched_features import full_float32_precision, run_in_batches

__all__ = ["FeatureExtractor", "InceptionExtractor", "get_extractor", "float32_precision_note", "run_in_batches", "full_float32_precision"]


class FeatureExtractor(Protocol):
    name: str
    sha256: str
    code_version: str
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
        from gancli.metrics.inception_weights import load_inception_state_dict

        self._build(load_inception_state_dict(weights_path, allow_download=allow_download), device)

    @classmethod
    def from_state_dict(cls, state: dict, *, device="cpu") -> "InceptionExtractor":
        """The extractor on weights already in memory (tests, your own verified copy); strict key matching."""
        extractor = cls.__new__(cls)
        extractor._build(state, device)
        return extractor

    def _build(self, state: dict, device) -> None:
        from gancli.metrics.inception import CODE_VERSION, FIDInceptionV3
        from gancli.metrics.inception_weights import INCEPTION_WEIGHTS_SHA256

        self.sha256 = INCEPTION_WEIGHTS_SHA256
        self.code_version = CODE_VERSION
        self.device = device
        self.network = FIDInceptionV3()
        self.network.load_state_dict(state)
        self.network.eval().requires_grad_(False).to(device)

    def features(self, images, *, batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        from gancli.metrics.image_batches import match_channels, to_pixels

        return run_in_batches(
            lambda batch: self.network(match_channels(to_pixels(batch), 3).to(self.device)),
            images,
            batch_size or self.default_batch_size,
        )


def float32_precision_note(device) -> str:
    """What the protocol says about TF32 for features computed on `device`."""
    if str(device).startswith("cuda"):
        return "TF32 off (torch.backends.cuda.matmul and cudnn) during feature extraction"
    return f"full float32 ({device}: TF32 does not apply)"


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
