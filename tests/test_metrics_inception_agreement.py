"""gancli's FID Inception-v3 against an independent implementation: torch-fidelity's (from PyPI, the `test`
extra), with the same weights and the same uint8 images, including the TF1 bilinear resize from other sizes.

Random weights make the check offline: it compares architecture and preprocessing, not the published
weights. When the published weights file is in the torch hub cache, one more test compares real features.
"""
from __future__ import annotations

import importlib.util
import math
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from gancli.metrics.extractors import InceptionExtractor
from gancli.metrics.inception import FIDInceptionV3, resize_bilinear_tf1

TOLERANCE = 1e-5  # relative to the largest magnitude of the reference output
SIZES = [(28, 28), (32, 32), (64, 64), (299, 299), (400, 360)]  # up-, non- and down-sampled, and non-square
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def torch_fidelity_module(name: str):
    """A module of the installed torch-fidelity, imported without running the package's __init__.

    That __init__ imports every extractor, and the CLIP, DINOv2 and VGG ones import torchvision, whose
    PyPI build cannot load beside the CPU build of torch. The Inception modules never import torchvision.
    """
    if "torch_fidelity" not in sys.modules:
        spec = importlib.util.find_spec("torch_fidelity")
        if spec is None:
            raise ImportError("torch-fidelity is missing: pip install -c constraints.txt -e '.[test]'")
        package = types.ModuleType("torch_fidelity")
        package.__path__ = list(spec.submodule_search_locations)
        package.__spec__ = spec
        sys.modules["torch_fidelity"] = package
    return importlib.import_module(f"torch_fidelity.{name}")


def random_fid_inception_state(seed: int) -> dict:
    """Weights under which every layer keeps activations of order one (He-normal convolutions, batch norm
    near identity), so that a relative comparison of the outputs is meaningful."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in FIDInceptionV3().state_dict().items():
        if key.endswith("conv.weight"):
            state[key] = torch.randn(value.shape, generator=generator) * math.sqrt(2.0 / value[0].numel())
        elif key.endswith(("bn.weight", "bn.running_var")):
            state[key] = 0.8 + 0.4 * torch.rand(value.shape, generator=generator)
        elif key.endswith(("bn.bias", "bn.running_mean")):
            state[key] = 0.2 * torch.rand(value.shape, generator=generator) - 0.1
        elif key == "fc.weight":
            state[key] = torch.randn(value.shape, generator=generator) / math.sqrt(value.shape[1])
        elif key == "fc.bias":
            state[key] = torch.randn(value.shape, generator=generator)
        else:
            state[key] = value.clone()
    return state


def reference_inception(state: dict, monkeypatch):
    """torch-fidelity's FeatureExtractorInceptionV3 on `state`: its weight download is replaced by the dict."""
    module = torch_fidelity_module("feature_extractor_inceptionv3")
    monkeypatch.setattr(module, "load_state_dict_from_url", lambda *args, **kwargs: {k: v.clone() for k, v in state.items()})
    return module.FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"])


def relative_difference(ours: torch.Tensor, reference: torch.Tensor) -> float:
    return float((ours.double() - reference.double()).abs().max() / reference.double().abs().max())


@pytest.fixture(scope="module")
def random_state() -> dict:
    return random_fid_inception_state(0)


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def test_pool3_features_and_logits_agree_with_torch_fidelity(random_state, monkeypatch, size):
    images = torch.from_numpy(np.random.default_rng(size[0]).integers(0, 256, size=(2, 3, *size), dtype=np.uint8))
    ours = InceptionExtractor.from_state_dict(random_state)
    features, logits = ours.features(images)
    with torch.inference_mode():
        reference_features, reference_logits = reference_inception(random_state, monkeypatch)(images)
    assert features.shape == (2, 2048) and logits.shape == (2, 1008)
    assert relative_difference(torch.from_numpy(features), reference_features) <= TOLERANCE
    assert relative_difference(torch.from_numpy(logits), reference_logits) <= TOLERANCE
    # the two images must give clearly different features, or agreement would prove nothing
    assert relative_difference(reference_features[:1], reference_features[1:]) > 1e-2


def test_grey_images_are_compared_as_their_rgb_copies(random_state, monkeypatch):
    grey = torch.from_numpy(np.random.default_rng(7).integers(0, 256, size=(2, 1, 28, 28), dtype=np.uint8))
    features, logits = InceptionExtractor.from_state_dict(random_state).features(grey)
    with torch.inference_mode():
        reference_features, reference_logits = reference_inception(random_state, monkeypatch)(grey.expand(-1, 3, -1, -1))
    assert relative_difference(torch.from_numpy(features), reference_features) <= TOLERANCE
    assert relative_difference(torch.from_numpy(logits), reference_logits) <= TOLERANCE


def test_a_torchvision_style_last_pool_branch_is_caught(random_state, monkeypatch):
    """The check has teeth: averaging in Mixed_7c's pool branch (torchvision's choice) breaks agreement."""
    images = torch.from_numpy(np.random.default_rng(3).integers(0, 256, size=(2, 3, 32, 32), dtype=np.uint8))
    wrong = FIDInceptionV3()
    wrong.load_state_dict(random_state)
    wrong.Mixed_7c.max_pool_branch = False
    with torch.inference_mode():
        features, _ = wrong.eval()(images.float())
        reference_features, _ = reference_inception(random_state, monkeypatch)(images)
    assert relative_difference(features, reference_features) > 100 * TOLERANCE


def test_a_half_pixel_resize_is_caught(random_state, monkeypatch):
    """pytorch-fid's F.interpolate resize (half-pixel centres) instead of TF1's moves the features by ~1e-2."""
    images = torch.from_numpy(np.random.default_rng(3).integers(0, 256, size=(2, 3, 32, 32), dtype=np.uint8))
    network = FIDInceptionV3()
    network.load_state_dict(random_state)
    half_pixel = torch.nn.functional.interpolate(images.float(), size=(299, 299), mode="bilinear", align_corners=False)
    with torch.inference_mode():
        features, _ = network.eval()(half_pixel)
        reference_features, _ = reference_inception(random_state, monkeypatch)(images)
    assert relative_difference(features, reference_features) > 100 * TOLERANCE


@pytest.mark.parametrize("size", [(28, 28), (32, 32), (64, 64), (300, 300), (512, 512), (17, 61)])
def test_resize_is_torch_fidelitys_tensorflow1_bilinear(size):
    interpolate = torch_fidelity_module("interpolate_compat_tensorflow").interpolate_bilinear_2d_like_tensorflow1x
    pixels = torch.from_numpy(np.random.default_rng(1).integers(0, 256, size=(2, 3, *size)).astype(np.float32))
    ours = resize_bilinear_tf1(pixels, (299, 299))
    reference = interpolate(pixels, size=(299, 299), align_corners=False)
    assert relative_difference(ours, reference) <= TOLERANCE


def _published_weights_file() -> Path | None:
    from gancli.metrics.inception_weights import INCEPTION_WEIGHTS_FILENAME, torch_hub_checkpoints_dir

    path = torch_hub_checkpoints_dir() / INCEPTION_WEIGHTS_FILENAME
    return path if path.is_file() or path.with_suffix(".safetensors").is_file() else None


@pytest.mark.skipif(_published_weights_file() is None, reason="the published FID Inception weights are not in the torch hub cache")
@pytest.mark.skipif(not FASHION_MNIST.is_dir(), reason="Fashion-MNIST is not installed (the real images compared)")
def test_real_weights_give_the_references_features_on_real_images(monkeypatch):
    from gancli.data.sources import load_data
    from gancli.metrics.inception_weights import load_inception_state_dict

    state = load_inception_state_dict(allow_download=False)  # sha256-verified
    images = load_data(str(FASHION_MNIST), split="test").values[:4]
    features, logits = InceptionExtractor.from_state_dict(state).features(images)
    with torch.inference_mode():
        reference_features, reference_logits = reference_inception(state, monkeypatch)(images.expand(-1, 3, -1, -1))
    assert relative_difference(torch.from_numpy(features), reference_features) <= TOLERANCE
    assert relative_difference(torch.from_numpy(logits), reference_logits) <= TOLERANCE
