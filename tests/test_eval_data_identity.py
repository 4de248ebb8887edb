"""What data a source resolves to (gancli.data.sources.locate_source / resolve_data), and why the reference
features' cache key changes exactly when the features could."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from _idx_files import FASHION_MNIST, write_idx
from gancli.data.sources import load_data, locate_source, resolve_data
from gancli.evaluation.inputs import overlaps


def _png_folder(root, count: int, seed: int, *, classes=("cats", "dogs")):
    rng = np.random.default_rng(seed)
    for index in range(count):
        folder = root / classes[index % len(classes)]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, size=(12, 12), dtype=np.uint8)).save(folder / f"{index:03d}.png")
    return root


def test_train_and_test_sub_folders_are_splits_not_two_classes(tmp_path):
    _png_folder(tmp_path / "faces" / "train", 8, 0)
    _png_folder(tmp_path / "faces" / "test", 4, 1)
    train, test = load_data(str(tmp_path / "faces"), split="train"), load_data(str(tmp_path / "faces"), split="test")
    assert (len(train), len(test)) == (8, 4)
    assert train.spec.class_names == ("cats", "dogs") and train.spec.name == "faces"
    located = locate_source(str(tmp_path / "faces"), "test")
    assert (located["format"], located["has_splits"], located["split"]) == ("split-folders", True, "test")


def test_a_plain_folder_has_no_splits(tmp_path):
    _png_folder(tmp_path / "pets", 6, 0)
    assert locate_source(str(tmp_path / "pets"), "test")["split"] == "whole"
    assert overlaps(locate_source(str(tmp_path / "pets"), "train"), locate_source(str(tmp_path / "pets"), "test"))


def test_an_alias_that_resolves_to_a_local_image_folder_has_no_splits(tmp_path, monkeypatch):
    _png_folder(tmp_path / "celeba", 4, 0, classes=("all",))
    monkeypatch.setenv("GANCLI_DATA_DIR", str(tmp_path))
    located = locate_source("celeba", "test")
    assert located["alias"] == "celeba" and located["alias_resolved"] == "local"
    assert located["location"] == str((tmp_path / "celeba").resolve())
    assert located["has_splits"] is False and located["split"] == "whole"


def test_an_alias_without_a_local_folder_names_the_hub(tmp_path, monkeypatch):
    from gancli.data.sources import ALIASES

    monkeypatch.setattr("gancli.data.hub_datasets.data_roots", lambda: [tmp_path])
    located = locate_source("ffhq", "train")
    hub_id = ALIASES["ffhq"][1]  # the alias table names the hub dataset; it is not this test's to pin
    assert (located["alias_resolved"], located["location"], located["split"]) == ("hub", f"hub:{hub_id}", "train")


def test_a_relative_and_an_absolute_path_are_the_same_data(tmp_path, monkeypatch):
    _png_folder(tmp_path / "faces", 4, 0)
    monkeypatch.chdir(tmp_path)
    relative, absolute = locate_source("./faces", "train"), locate_source(str(tmp_path / "faces"), "test")
    assert relative["location"] == absolute["location"]
    assert overlaps(relative, absolute) is True  # no splits: train and test are the same images


def test_splits_of_one_source_do_not_overlap_and_a_missing_source_is_unknown(tmp_path):
    folder = tmp_path / "idx"
    folder.mkdir()
    for prefix, count in (("train", 6), ("t10k", 3)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", np.zeros((count, 28, 28), np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.zeros(count, np.uint8))
    assert overlaps(locate_source(str(folder), "train"), locate_source(str(folder), "test")) is False
    assert overlaps(locate_source(str(folder), "test"), locate_source(str(folder), "test")) is True
    assert overlaps(locate_source("./gone", "train"), locate_source(str(folder), "test")) is None


def test_the_fingerprint_follows_a_folders_content(tmp_path):
    folder = _png_folder(tmp_path / "pets", 6, 0)
    first = resolve_data(str(folder)).identity
    assert first["fingerprint_of"] == "file contents" and first["examples"] == 6
    assert resolve_data(str(folder)).identity["fingerprint"] == first["fingerprint"]
    Image.fromarray(np.full((12, 12), 7, np.uint8)).save(folder / "cats" / "000.png")  # same name, same size
    assert resolve_data(str(folder)).identity["fingerprint"] != first["fingerprint"]


def test_reference_cache_misses_when_a_folders_content_changes(tmp_path, monkeypatch):
    from gancli.evaluation import evaluate, train_domain_extractor

    monkeypatch.setenv("GANCLI_CACHE_DIR", str(tmp_path / "cache"))
    folder = _png_folder(tmp_path / "pets", 24, 0)
    extractor = train_domain_extractor(str(folder), tmp_path / "pets-cnn.safetensors", steps=2, batch_size=8, resolution=16).path

    def cache_state():
        report = evaluate(str(folder), extractor=str(extractor), metrics="fid", num_samples=12)
        return report.protocol["reference"]["cache"]

    assert [cache_state(), cache_state()] == ["miss", "hit"]
    Image.fromarray(np.full((12, 12), 200, np.uint8)).save(folder / "dogs" / "001.png")
    assert cache_state() == "miss"
    report = evaluate(str(folder), extractor=str(extractor), metrics="fid", num_samples=12)
    computed = report.protocol["reference"]["features_computed"]
    assert computed["device"] == "cpu" and computed["torch"] and computed["gancli"]


@pytest.mark.skipif(not FASHION_MNIST.is_dir(), reason="Fashion-MNIST is not installed")
def test_the_stored_fashion_mnist_floors_match_the_installed_test_split():
    from gancli.evaluation.inputs import REFERENCE_SUBSET_SEED, pixels_sha256, subset_indices
    from gancli.metrics.floors import FLOOR_TABLES

    test = load_data("fashion-mnist", split="test")
    for table in FLOOR_TABLES:
        rows = subset_indices(len(test), table.count, REFERENCE_SUBSET_SEED)
        assert pixels_sha256(test.values[rows]) == table.reference_pixels_sha256
