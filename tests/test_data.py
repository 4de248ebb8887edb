"""Every --data source, on tiny files made here."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from _idx_files import FASHION_MNIST, write_idx
from gancli.data.sources import load_data
from gancli.data.stream import BatchStream
from gancli.errors import GancliError


def _folder(tmp_path: Path) -> Path:
    root = tmp_path / "imgs"
    for cls, mode, size in (("cats", "RGB", (40, 30)), ("dogs", "L", (30, 30)), ("owls", "RGBA", (24, 36))):
        (root / cls / "deeper").mkdir(parents=True)
        for i in range(3):
            colour = (200, 10, 10, 128) if mode == "RGBA" else ((10, 200, 10) if mode == "RGB" else 90)
            Image.new(mode, size, colour).save(root / cls / ("deeper" if i == 2 else ".") / f"{i}.png")
    (root / "cats" / "notes.txt").write_text("not an image")
    (root / "dogs" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    return root


def test_image_folder_labels_channels_crop_resize(tmp_path):
    data = load_data(str(_folder(tmp_path)), resolution=16)
    assert len(data) == 9
    assert data.spec.num_classes == 3 and data.spec.class_names == ("cats", "dogs", "owls")
    assert data.spec.channels == 3 and data.values.shape == (9, 3, 16, 16)
    assert data.values.dtype == torch.uint8
    assert sorted(data.labels.tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    owl = data.values[data.labels == 2][0]
    # RGBA (200,10,10) at alpha 128 composited on white
    assert abs(int(owl[0, 8, 8]) - 227) <= 2 and abs(int(owl[1, 8, 8]) - 132) <= 2
    gray = load_data(str(_folder(tmp_path / "again")), resolution=8, channels=1)
    assert gray.values.shape == (9, 1, 8, 8)


def test_empty_and_missing_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("x")
    with pytest.raises(GancliError, match="no readable images"):
        load_data(str(tmp_path / "empty"))
    with pytest.raises(GancliError, match="does not exist"):
        load_data(str(tmp_path / "nowhere"))


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_idx_files_and_folder_split(tmp_path, suffix):
    images = np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8)
    labels = (np.arange(20) % 10).astype(np.uint8)
    write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", images)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", labels)
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", images[:5])
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", labels[:5])
    direct = load_data(str(tmp_path / f"train-images-idx3-ubyte{suffix}"))
    assert direct.values.shape == (20, 1, 28, 28) and torch.equal(direct.values[:, 0], torch.from_numpy(images))
    assert direct.labels.tolist() == labels.tolist()
    test = load_data(str(tmp_path), split="test", resolution=32)
    assert test.values.shape == (5, 1, 32, 32) and test.spec.num_classes == 5


def test_truncated_idx_is_a_clear_error(tmp_path):
    path = write_idx(tmp_path / "x-images-idx3-ubyte", np.zeros((10, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(GancliError, match="truncated"):
        load_data(str(path))


def test_npz_images_float_and_points(tmp_path):
    np.savez(tmp_path / "u8.npz", images=np.full((4, 8, 8, 3), 255, np.uint8))
    data = load_data(str(tmp_path / "u8.npz"))
    assert data.values.shape == (4, 3, 8, 8) and data.values.max() == 255
    np.savez(tmp_path / "f.npz", x=np.full((4, 1, 8, 8), -1.0, np.float32))
    assert load_data(str(tmp_path / "f.npz")).values.max() == 0
    np.savez(tmp_path / "p.npz", points=np.random.default_rng(0).normal(size=(50, 2)))
    points = load_data(str(tmp_path / "p.npz"))
    assert points.spec.kind == "points" and points.values.shape == (50, 2)
    np.savez(tmp_path / "bad.npz", weights=np.zeros(3))
    with pytest.raises(GancliError, match="no 'images'"):
        load_data(str(tmp_path / "bad.npz"))


def test_alias_uses_gancli_data_dir(tmp_path, monkeypatch):
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte.gz", np.zeros((6, 28, 28), np.uint8))
    write_idx(folder / "train-labels-idx1-ubyte.gz", (np.arange(6) % 10).astype(np.uint8))
    monkeypatch.setenv("GANCLI_DATA_DIR", str(tmp_path))
    data = load_data("fashion-mnist", resolution=32)
    assert len(data) == 6 and data.values.shape[-1] == 32


def test_hub_dataset_path_with_a_local_dataset(monkeypatch):
    import datasets

    rows = {"image": [Image.new("RGB", (12, 10), (i * 20, 0, 0)) for i in range(6)], "label": [0, 1, 2, 0, 1, 2]}
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b", "c"])})
    local = datasets.Dataset.from_dict(rows, features=features)
    calls = []

    def fake_load_dataset(name, split):
        calls.append((name, split))
        return local

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    data = load_data("someone/tiny-images", resolution=8)
    assert calls == [("someone/tiny-images", "train")]
    assert data.values.shape == (6, 3, 8, 8) and data.spec.class_names == ("a", "b", "c")


def test_hub_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(GancliError, match="could not load Hugging Face dataset"):
        load_data("nobody/does-not-exist-xyz")


def test_toy_points():
    data = load_data("ring8")
    assert data.spec.kind == "points" and data.values.shape[1] == 2
    radius = data.values.norm(dim=1)
    assert abs(radius.mean().item() - 1.0) < 0.01


def test_labeled_keeps_n_per_class(tiny_npz):
    data = load_data(str(tiny_npz), labeled=2, seed=0)
    kept = data.labels[data.labels >= 0]
    assert len(kept) == 6 and sorted(kept.tolist()) == [0, 0, 1, 1, 2, 2]


def test_stream_is_a_function_of_position(tiny_npz):
    data = load_data(str(tiny_npz))
    a = BatchStream(data, global_batch=10, seed=3)
    first = [a.next()[0] for _ in range(7)]  # crosses epoch boundaries (48 images)
    b = BatchStream(data, global_batch=10, seed=3, consumed=40)
    assert torch.equal(b.next()[0], first[4])
    # two processes split each global batch
    r0 = BatchStream(data, global_batch=10, seed=3, rank=0, world_size=2).next()[0]
    r1 = BatchStream(data, global_batch=10, seed=3, rank=1, world_size=2).next()[0]
    assert torch.equal(torch.cat([r0, r1]), first[0])
    assert first[0].min() >= -1 and first[0].max() <= 1


@pytest.mark.skipif(not FASHION_MNIST.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_real_fashion_mnist():
    data = load_data("fashion-mnist", split="test", resolution=32)
    assert len(data) == 10_000 and data.spec.num_classes == 10
    assert data.spec.class_names[9] == "Ankle boot"


def test_a_large_folder_is_resized_once_into_a_mapped_copy(tmp_path, monkeypatch, capsys):
    import os

    from PIL import Image

    from gancli.data import sources

    folder = tmp_path / "faces"
    for k in ("a", "b"):
        (folder / k).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(np.random.default_rng(i).integers(0, 256, (24, 20, 3), dtype=np.uint8)).save(
                folder / k / f"{i}.png")
    monkeypatch.setenv("GANCLI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("GANCLI_RESIZED_CACHE", "0")
    monkeypatch.setattr("gancli.data.folders.MATERIALIZE_LIMIT_BYTES", 0)
    lazy = sources.load_data(str(folder), resolution=8, channels=3)
    monkeypatch.setenv("GANCLI_RESIZED_CACHE", "1")
    cached = sources.load_data(str(folder), resolution=8, channels=3)
    copies = list((tmp_path / "cache" / "resized").glob("faces-8px-3ch-*.npy"))
    assert len(copies) == 1 and "writing resized copies of 10 images" in capsys.readouterr().err
    assert cached.in_memory and cached.labels.tolist() == [0] * 5 + [1] * 5
    for i in range(10):  # the same pixels as decoding the files
        assert torch.equal(cached.values[i], lazy[i][0])
    written = os.stat(copies[0]).st_mtime_ns
    again = sources.load_data(str(folder), resolution=8, channels=3)
    assert os.stat(copies[0]).st_mtime_ns == written and torch.equal(again.values, cached.values)
    assert "writing" not in capsys.readouterr().err  # mapped, not rewritten
    Image.fromarray(np.zeros((24, 20, 3), dtype=np.uint8)).save(folder / "a" / "0.png")
    changed = sources.load_data(str(folder), resolution=8, channels=3)
    assert len(list((tmp_path / "cache" / "resized").glob("faces-8px-3ch-*.npy"))) == 2
    assert changed.values[0].sum() == 0


@pytest.mark.slow
def test_hub_datasets_load_from_an_offline_cache_as_after_a_download(tmp_path):
    """The real hub path: datasets.load_dataset in offline mode, from a populated cache (no network)."""
    import subprocess
    import sys

    from _offline_hub import offline_env, populate

    home = tmp_path / "hf"
    populate(home, "someone/tiny-faces", count=12, side=20, classes=3)
    populate(home, "bitmind/ffhq-256", count=10, side=24)  # what the ffhq alias resolves to
    env = {**offline_env(home), "GANCLI_DATA_DIR": str(tmp_path / "no-local-data")}
    script = ("from gancli.data.sources import load_data; d = load_data('someone/tiny-faces', resolution=16); "
              "print(tuple(d.values.shape), d.spec.class_names); f = load_data('ffhq', resolution=8); "
              "print(tuple(f.values.shape))")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "(12, 3, 16, 16) ('class0', 'class1', 'class2')" in done.stdout and "(10, 3, 8, 8)" in done.stdout
    # nothing cached and no local folder: one clear line saying where to put the images
    empty = {**offline_env(tmp_path / "empty-hf"), "GANCLI_DATA_DIR": str(tmp_path / "no-local-data")}
    train = subprocess.run([sys.executable, "-m", "gancli", "train", "dcgan", "--data", "ffhq", "--steps", "1",
                            "--out", str(tmp_path / "run")], env=empty, capture_output=True, text=True, timeout=300)
    assert train.returncode == 2 and train.stderr.count("\n") == 1, train.stderr
    assert "ffhq" in train.stderr and "GANCLI_DATA_DIR" in train.stderr and "Traceback" not in train.stderr
    assert not (tmp_path / "run").exists()
