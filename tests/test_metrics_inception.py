import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from gancli.errors import GancliError
from gancli.metrics import inception_weights
from gancli.metrics.inception import FIDInceptionV3, resize_bilinear_tf1

KEYS_FILE = Path(__file__).parent / "data" / "inception_keys.txt"


@pytest.fixture(scope="module")
def network():
    torch.manual_seed(0)
    return FIDInceptionV3().eval()


def test_parameter_names_and_shapes_match_the_published_weights_file(network):
    expected = [tuple(line.split()) for line in KEYS_FILE.read_text().splitlines() if line and not line.startswith("#")]
    actual = [(key, ",".join(map(str, value.shape)) if value.dim() else "-") for key, value in network.state_dict().items()]
    assert actual == expected


def test_forward_gives_pool3_features_and_1008_logits(network):
    with torch.inference_mode():
        features, logits = network(torch.rand(2, 3, 299, 299) * 255)
    assert features.shape == (2, 2048) and logits.shape == (2, 1008)
    assert torch.isfinite(features).all() and torch.isfinite(logits).all()


def tf1_resize_reference(image, out_h, out_w):
    """TF 1.x resize_bilinear (align_corners=False, no half-pixel centres), one pixel at a time."""
    in_h, in_w = image.shape
    out = np.zeros((out_h, out_w))
    for i in range(out_h):
        y = i * np.float32(in_h / out_h)
        y0, dy = int(np.floor(y)), y - np.floor(y)
        y1 = min(y0 + 1, in_h - 1)
        for j in range(out_w):
            x = j * np.float32(in_w / out_w)
            x0, dx = int(np.floor(x)), x - np.floor(x)
            x1 = min(x0 + 1, in_w - 1)
            top = image[y0, x0] + (image[y0, x1] - image[y0, x0]) * dx
            bottom = image[y1, x0] + (image[y1, x1] - image[y1, x0]) * dx
            out[i, j] = top + (bottom - top) * dy
    return out


@pytest.mark.parametrize("size", [(9, 13), (3, 2), (4, 5)])
def test_resize_follows_tensorflow1_bilinear(size):
    image = np.random.default_rng(0).uniform(0, 255, size=(4, 5))
    resized = resize_bilinear_tf1(torch.from_numpy(image)[None, None], size)[0, 0].numpy()
    np.testing.assert_allclose(resized, tf1_resize_reference(image, *size), rtol=0, atol=1e-9)


def test_resize_differs_from_half_pixel_interpolation():
    image = torch.rand(1, 1, 32, 32)
    tf1 = resize_bilinear_tf1(image, (299, 299))
    half_pixel = torch.nn.functional.interpolate(image, size=(299, 299), mode="bilinear", align_corners=False)
    assert (tf1 - half_pixel).abs().max() > 0.05
    assert torch.equal(tf1[..., 0, 0], image[..., 0, 0])


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("GANCLI_CACHE_DIR", str(tmp_path / "gancli"))
    return tmp_path / "torch" / "hub" / "checkpoints"


def refuse_download(*args, **kwargs):
    raise OSError("network is unreachable")


def test_missing_weights_offline_is_a_one_line_user_error(empty_torch_home, monkeypatch):
    monkeypatch.setattr(inception_weights, "download_file", refuse_download)
    with pytest.raises(GancliError) as caught:
        inception_weights.load_inception_state_dict()
    message = str(caught.value)
    assert "\n" not in message
    assert str(empty_torch_home) in message and "--inception-weights" in message
    assert inception_weights.INCEPTION_WEIGHTS_FILENAME in message


def test_downloads_can_be_switched_off(empty_torch_home, monkeypatch):
    monkeypatch.setattr(inception_weights, "download_file", refuse_download)
    with pytest.raises(GancliError, match="downloads are disabled"):
        inception_weights.load_inception_state_dict(allow_download=False)


def test_explicit_path_that_does_not_exist_is_a_user_error(tmp_path):
    with pytest.raises(GancliError, match="does not exist"):
        inception_weights.load_inception_state_dict(tmp_path / "nope.pth")


def test_a_file_with_the_wrong_hash_is_never_unpickled(empty_torch_home, monkeypatch):
    empty_torch_home.mkdir(parents=True)
    (empty_torch_home / inception_weights.INCEPTION_WEIGHTS_FILENAME).write_bytes(b"not the weights")

    def forbidden_load(*args, **kwargs):
        raise AssertionError("torch.load must not run on an unverified file")

    monkeypatch.setattr(torch, "load", forbidden_load)
    with pytest.raises(GancliError, match="sha256"):
        inception_weights.load_inception_state_dict()


def test_verified_weights_load_once_with_torch_then_from_the_safetensors_copy(network, empty_torch_home, monkeypatch):
    # A stand-in .pth (random weights) plays the published file: the expected hash is set to its hash.
    empty_torch_home.mkdir(parents=True)
    pth = empty_torch_home / inception_weights.INCEPTION_WEIGHTS_FILENAME
    torch.save(network.state_dict(), pth)
    monkeypatch.setattr(inception_weights, "INCEPTION_WEIGHTS_SHA256", hashlib.sha256(pth.read_bytes()).hexdigest())

    first = inception_weights.load_inception_state_dict()
    converted = pth.with_suffix(".safetensors")
    assert converted.is_file()

    def forbidden_load(*args, **kwargs):
        raise AssertionError("the converted copy must be read without unpickling")

    monkeypatch.setattr(torch, "load", forbidden_load)
    second = inception_weights.load_inception_state_dict()
    explicit = inception_weights.load_inception_state_dict(converted)
    for state in (first, second, explicit):
        assert sorted(state) == sorted(network.state_dict())
        assert all(torch.equal(state[key], value) for key, value in network.state_dict().items())


def test_inception_extractor_from_a_converted_weights_file(network, tmp_path):
    from gancli.metrics.extractors import InceptionExtractor, get_extractor

    converted = tmp_path / "fid-inception.safetensors"
    converted.write_bytes(inception_weights.converted_weights_bytes(network.state_dict()))
    extractor = get_extractor("inception", inception_weights=converted)
    assert isinstance(extractor, InceptionExtractor)
    assert (extractor.name, extractor.feature_dim, extractor.num_classes) == ("inception", 2048, 1008)
    assert extractor.sha256 == inception_weights.INCEPTION_WEIGHTS_SHA256
    grey = np.random.default_rng(0).integers(0, 256, size=(2, 1, 28, 28), dtype=np.uint8)
    features, logits = extractor.features(grey, batch_size=1)
    assert features.shape == (2, 2048) and logits.shape == (2, 1008)
    with torch.inference_mode():
        direct_features, _ = network(torch.from_numpy(grey).float().expand(-1, 3, -1, -1))
    np.testing.assert_allclose(features, direct_features.numpy(), rtol=1e-5, atol=1e-6)


def _flip_one_tensor_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01  # the last bytes are tensor data, past the JSON header
    path.write_bytes(bytes(data))


def test_a_converted_copy_whose_tensors_changed_is_refused(network, tmp_path):
    converted = tmp_path / "fid-inception.safetensors"
    converted.write_bytes(inception_weights.converted_weights_bytes(network.state_dict()))
    assert inception_weights.load_inception_state_dict(converted)  # sound before
    _flip_one_tensor_byte(converted)
    with pytest.raises(GancliError, match="hash differs from the one recorded at conversion"):
        inception_weights.load_inception_state_dict(converted)


def test_a_tampered_automatic_copy_is_replaced_from_the_verified_pth(network, empty_torch_home, monkeypatch):
    empty_torch_home.mkdir(parents=True)
    pth = empty_torch_home / inception_weights.INCEPTION_WEIGHTS_FILENAME
    torch.save(network.state_dict(), pth)
    monkeypatch.setattr(inception_weights, "INCEPTION_WEIGHTS_SHA256", hashlib.sha256(pth.read_bytes()).hexdigest())
    inception_weights.load_inception_state_dict()
    converted = pth.with_suffix(".safetensors")
    _flip_one_tensor_byte(converted)

    state = inception_weights.load_inception_state_dict()  # the .pth again (hash-checked), not the bad copy
    assert all(torch.equal(state[key], value) for key, value in network.state_dict().items())
    assert inception_weights.load_inception_state_dict(converted)  # rewritten, sound again


def test_a_safetensors_file_that_is_not_converted_weights_is_refused(tmp_path):
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(GancliError, match="not a gancli-converted"):
        inception_weights.load_inception_state_dict(tmp_path / "other.safetensors")
