import json

import numpy as np
import pytest
import torch

from _labelled_images import quadrant_images
from gancli.errors import GancliError
from gancli.metrics.classifier import load_extractor, save_extractor, train_extractor
from gancli.metrics.extractors import get_extractor


@pytest.fixture(scope="module")
def trained():
    images, labels = quadrant_images(512, 0)
    test_images, test_labels = quadrant_images(200, 1)
    model, accuracy = train_extractor(
        images, labels, test_images, test_labels, steps=40, batch_size=32, seed=0, widths=(8, 16, 16), feature_dim=32
    )
    return model, accuracy, test_images


def test_training_learns_an_easy_task(trained):
    _, accuracy, _ = trained
    assert accuracy > 0.9


def test_same_seed_trains_the_same_weights():
    images, labels = quadrant_images(64, 2)
    first, _ = train_extractor(images, labels, images, labels, steps=3, batch_size=16, seed=3, widths=(4, 4, 4))
    second, _ = train_extractor(images, labels, images, labels, steps=3, batch_size=16, seed=3, widths=(4, 4, 4))
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))


def test_saved_extractor_round_trips_with_its_metadata(trained, tmp_path):
    import hashlib

    model, accuracy, test_images = trained
    meta = {"name": "quadrant-cnn", "test_accuracy": accuracy, "training_data": "synthetic quadrants, 512 images"}
    path = save_extractor(model, tmp_path / "quadrant.safetensors", meta)
    assert [p.name for p in tmp_path.iterdir()] == ["quadrant.safetensors"]

    extractor = load_extractor(path)
    assert extractor.name == "quadrant-cnn"
    assert extractor.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (extractor.feature_dim, extractor.num_classes) == (32, 4)
    for field, value in {"architecture": "gancli-small-cnn/1", "channels": 1, "resolution": 32, "num_classes": 4, "widths": [8, 16, 16],
                         "test_accuracy": accuracy, "training_data": meta["training_data"]}.items():
        assert extractor.metadata[field] == value

    features, logits = extractor.features(test_images, batch_size=64)
    with torch.inference_mode():
        expected_features, expected_logits = model(model.prepare(test_images))
    np.testing.assert_allclose(features, expected_features.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(logits, expected_logits.numpy(), rtol=1e-6, atol=1e-6)
    assert get_extractor(path).sha256 == extractor.sha256


def test_colour_and_float_images_are_adapted_to_a_grey_extractor(trained, tmp_path):
    model, _, test_images = trained
    extractor = load_extractor(save_extractor(model, tmp_path / "e.safetensors", {"name": "q"}))
    grey, _ = extractor.features(test_images[:8])
    as_colour = np.repeat(test_images[:8, None], 3, axis=1)
    as_generator_output = test_images[:8].astype(np.float32) / 127.5 - 1.0
    np.testing.assert_allclose(extractor.features(as_colour)[0], grey, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(extractor.features(as_generator_output)[0], grey, rtol=1e-6, atol=1e-6)


def test_files_without_gancli_extractor_metadata_are_refused(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    (tmp_path / "junk.bin").write_bytes(b"\x00" * 3)
    for name in ("plain.safetensors", "junk.bin"):
        with pytest.raises(GancliError, match="not a gancli feature extractor"):
            load_extractor(tmp_path / name)


def test_saving_needs_a_name(trained, tmp_path):
    with pytest.raises(ValueError, match="name"):
        save_extractor(trained[0], tmp_path / "x.safetensors", {"test_accuracy": 0.5})


def test_unknown_extractor_names_are_user_errors():
    with pytest.raises(GancliError, match="inception"):
        get_extractor("vgg16")


def test_metadata_is_plain_json_in_the_safetensors_header(trained, tmp_path):
    from safetensors import safe_open

    path = save_extractor(trained[0], tmp_path / "e.safetensors", {"name": "q"})
    with safe_open(str(path), framework="pt") as handle:
        header = handle.metadata()
    assert header["format"] == "gancli-extractor/1"
    assert json.loads(header["gancli_extractor"])["name"] == "q"
