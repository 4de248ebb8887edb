"""The FID paper's disturbances (gancli.evaluation.disturbances) and the `gancli eval DATA --disturb` report."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from _labelled_images import quadrant_images
from _reliability_support import one_torch_thread
from gancli.errors import GancliError
from gancli.evaluation.disturbances import (
    DISTURBANCES,
    disturb,
    parse_disturbances,
    parse_levels,
    pixel_damage,
    rendered_digits,
)

LEVELS = [0.25, 0.5, 0.75, 1.0]


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    """40 grey 32×32 images: the quadrant squares, doubled in size so every disturbance has room to act."""
    small, _ = quadrant_images(40, 0)
    return torch.from_numpy(np.kron(small, np.ones((2, 2), dtype=np.uint8))).unsqueeze(1)


@pytest.fixture(scope="module")
def foreign() -> torch.Tensor:
    return rendered_digits(20, 1, 32, seed=0)


@pytest.mark.parametrize("name", list(DISTURBANCES))
def test_level_zero_is_the_clean_image(images, foreign, name):
    assert torch.equal(disturb(images, name, 0.0, seed=0, foreign=foreign), images)


@pytest.mark.parametrize("name", list(DISTURBANCES))
def test_pixel_damage_rises_with_the_level(images, foreign, name):
    damage = [pixel_damage(images, disturb(images, name, level, seed=0, foreign=foreign)) for level in [0.0, *LEVELS]]
    assert damage[0] == 0.0
    assert all(later > earlier for earlier, later in zip(damage, damage[1:])), damage


@pytest.mark.parametrize("name", list(DISTURBANCES))
def test_same_seed_same_pixels_other_seed_other_pixels(images, foreign, name):
    first = disturb(images, name, 0.5, seed=3, foreign=foreign)
    assert torch.equal(first, disturb(images, name, 0.5, seed=3, foreign=foreign))
    assert first.dtype == torch.uint8 and first.shape == images.shape
    if name not in ("blur", "swirl"):  # those two draw nothing at random
        assert not torch.equal(first, disturb(images, name, 0.5, seed=4, foreign=foreign))


def test_a_higher_level_damages_the_same_pixels_and_images_further(images, foreign):
    def changed(name, level):
        return disturb(images, name, level, seed=0, foreign=foreign) != images

    low, high = changed("salt-and-pepper", 0.5), changed("salt-and-pepper", 1.0)
    assert bool(low.any()) and bool((low & ~high).sum() == 0)
    low_images = changed("mix", 0.5).flatten(1).any(1)
    high_images = changed("mix", 1.0).flatten(1).any(1)
    assert bool((low_images & ~high_images).sum() == 0) and int(high_images.sum()) > int(low_images.sum())
    # at the paper's strongest setting, mix replaces 75% of the images
    assert int(high_images.sum()) == pytest.approx(0.75 * len(images), abs=1)


def test_level_one_is_the_papers_strongest_setting():
    assert {name: d.parameter_at(1.0) for name, d in DISTURBANCES.items()} == {
        "noise": 0.75, "blur": 4.0, "swirl": 4.0, "salt-and-pepper": 0.3, "rectangles": 0.75, "mix": 0.75,
    }
    assert DISTURBANCES["blur"].parameter_at(0.25) == 1.0


def test_levels_and_names_are_parsed_or_refused_in_one_line():
    assert parse_levels("0.5,1,0.25") == [0.0, 0.25, 0.5, 1.0]  # sorted, the clean level added
    assert parse_disturbances("all") == list(DISTURBANCES)
    assert parse_disturbances("blur, noise") == ["blur", "noise"]
    for bad_levels in ("0,1.5", "a,b", ""):
        with pytest.raises(GancliError, match="--levels"):
            parse_levels(bad_levels)
    with pytest.raises(GancliError, match="unknown disturbance jpeg"):
        parse_disturbances("noise,jpeg")


def test_rendered_digits_are_seeded_strokes_on_black():
    digits = rendered_digits(10, 3, 28, seed=1)
    assert digits.shape == (10, 3, 28, 28) and digits.dtype == torch.uint8
    assert torch.equal(digits, rendered_digits(10, 3, 28, seed=1))
    assert all(0.02 < float((image > 128).float().mean()) < 0.5 for image in digits)  # a glyph, not blank or full
    assert int(digits[:, :, 0, 0].max()) == 0  # black background


# ---------------------------------------------------------------- the report through the command line


@pytest.fixture(scope="module")
def quadrants(tmp_path_factory) -> dict:
    from gancli.evaluation import train_domain_extractor

    root = tmp_path_factory.mktemp("disturb")
    small, labels = quadrant_images(120, 5)
    np.savez(root / "quadrants.npz", images=np.kron(small, np.ones((2, 2), dtype=np.uint8)), labels=labels)
    with one_torch_thread():
        extractor = train_domain_extractor(
            str(root / "quadrants.npz"), root / "quad-cnn.safetensors", steps=12, batch_size=16, resolution=16, name="quad-cnn"
        ).path
    return {"root": root, "data": root / "quadrants.npz", "extractor": extractor}


@pytest.fixture(autouse=True)
def _private_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("GANCLI_CACHE_DIR", str(tmp_path / "gancli-cache"))
    monkeypatch.setenv("GANCLI_OFFLINE", "1")


def test_disturbance_report_has_every_level_metric_and_protocol_and_a_picture(cli, quadrants, tmp_path):
    out = tmp_path / "disturb.json"
    with one_torch_thread():
        result = cli("eval", quadrants["data"], "--disturb", "noise,mix", "--levels", "0.5,1", "-n", "60",
                     "--extractor", quadrants["extractor"], "--metrics", "fid,kid,pr,is", "--out", out)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["format"] == "gancli-disturbance/1" and report["levels"] == [0.0, 0.5, 1.0]
    assert list(report["results"]) == ["noise", "mix"]
    for name, rows in report["results"].items():
        assert [row["level"] for row in rows] == [0.0, 0.5, 1.0]
        assert [row["parameter"] for row in rows] == [0.0, 0.375, 0.75]
        assert {"pixel_damage", "fid", "kid_mean", "kid_std", "is_mean", "precision", "recall"} <= set(rows[0])
        assert rows[0]["pixel_damage"] == 0.0 < rows[1]["pixel_damage"] < rows[2]["pixel_damage"]
    assert report["results"]["noise"][0] == report["results"]["mix"][0]  # one clean level, shared
    assert report["results"]["noise"][2]["fid"] > 10 * max(report["results"]["noise"][0]["fid"], 1e-3)
    protocol = report["protocol"]
    assert protocol["num_samples"] == 60 and protocol["seed"] == 0
    assert protocol["disturbances"]["noise"]["at_level_1"] == 0.75
    assert "rendered" in protocol["disturbances"]["mix"]["foreign_images"]
    assert protocol["reference"]["split_requested"] == "test" and protocol["reference"]["count"] == 60
    assert protocol["metrics"]["kid"]["parameters"]["subset_size"] == 60
    assert report["labels"]["fid"].startswith("FID-60 vs all data (quad-cnn ")
    # an .npz has no splits: the disturbed and the reference images are the same examples, and the report says so
    assert any("level 0 is not a held-out floor" in caveat for caveat in report["caveats"])
    png = out.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(png) as picture:
        assert picture.width >= 1000 and picture.height > 600
    assert "noise (α" in result.stdout and "FID-60" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["{data}", "--disturb", "jpeg"], "unknown disturbance jpeg"),
    (["{data}", "--disturb", "noise", "--levels", "2"], "--levels takes numbers between 0 and 1"),
    (["{data}", "--levels", "0.5"], "--levels belongs to --disturb"),
    (["{data}", "--disturb", "noise", "--mix-with", "{data}"], "mix is not selected"),
    (["{data}", "--disturb", "noise", "--metrics", "parzen"], "--disturb measures feature metrics"),
    (["{data}", "--disturb", "noise", "--truncation", "0.5"], "--truncation applies to checkpoints"),
    (["{root}/model.safetensors", "--disturb", "noise"], "SOURCE must be data"),
], ids=["unknown", "level-above-1", "levels-alone", "mix-with-alone", "parzen", "truncation", "checkpoint"])
def test_disturbance_user_errors_are_one_line(cli, quadrants, tmp_path, args, message):
    values = {key: str(value) for key, value in quadrants.items()}
    result = cli("eval", *(arg.format_map(values) for arg in args), "--extractor", quadrants["extractor"], "--out", tmp_path / "x.json")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr and not (tmp_path / "x.json").exists()
