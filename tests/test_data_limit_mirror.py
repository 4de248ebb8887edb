"""data.limit (a seeded subset, the small-data case) and data.mirror (every image and its mirror image)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gancli.data.sources import load_data
from gancli.errors import GancliError


@pytest.fixture
def numbered(tmp_path):
    """20 labelled 4×4 images whose first pixel is their index and whose left column is bright."""
    images = np.zeros((20, 4, 4), dtype=np.uint8)
    images[:, :, 0] = 200
    images[:, 0, 1] = np.arange(20)
    np.savez(tmp_path / "numbered.npz", images=images, labels=np.arange(20) % 4)
    return str(tmp_path / "numbered.npz")


def test_limit_keeps_a_seeded_subset_with_its_labels(numbered):
    a = load_data(numbered, limit=5, seed=0)
    ids = a.values[:, 0, 0, 1].tolist()
    assert len(a) == 5 and len(set(ids)) == 5 and ids == sorted(ids)
    assert a.labels.tolist() == [i % 4 for i in ids]
    assert load_data(numbered, limit=5, seed=0).values.equal(a.values)  # the same seed, the same images
    assert load_data(numbered, limit=5, seed=1).values[:, 0, 0, 1].tolist() != ids
    assert len(load_data(numbered, limit=50)) == 20  # more than there are: all of them


def test_mirror_adds_each_image_flipped_left_to_right(numbered):
    plain, mirrored = load_data(numbered), load_data(numbered, mirror=True)
    assert len(mirrored) == 40
    assert torch.equal(mirrored.values[:20], plain.values)
    assert torch.equal(mirrored.values[20:], plain.values.flip(-1))
    assert (mirrored.values[20:, 0, :, -1] == 200).all()  # the bright column is now on the right
    assert torch.equal(mirrored.labels, torch.cat([plain.labels, plain.labels]))
    assert len(load_data(numbered, limit=5, mirror=True)) == 10


def test_mirror_of_points_is_refused():
    with pytest.raises(GancliError, match="data.mirror flips images left to right; 'ring8' holds points"):
        load_data("ring8", mirror=True)


def test_a_folder_read_lazily_takes_the_same_options(tmp_path):
    from PIL import Image

    from gancli.data.images import LazyImages

    folder = tmp_path / "folder"
    folder.mkdir()
    for i in range(6):
        pixels = np.zeros((8, 8, 3), dtype=np.uint8)
        pixels[:, :2] = 250
        pixels[0, 3] = i * 10
        Image.fromarray(pixels).save(folder / f"{i}.png")
    data = load_data(str(folder), resolution=8, limit=4, mirror=True)
    assert len(data) == 8
    if isinstance(data, LazyImages):  # small folders are read into memory; the lazy path must agree
        first, flipped = data[0][0], data[4][0]
    else:
        first, flipped = data.values[0], data.values[4]
    assert torch.equal(flipped, first.flip(-1))


def test_lazy_images_subset_and_mirror_by_index():
    from gancli.data.images import LazyImages
    from gancli.data.spec import DataSpec

    def load(i):
        image = torch.zeros(1, 2, 3, dtype=torch.uint8)
        image[0, 0, 0] = i + 1  # marks the image and its left edge
        return image, i % 2

    lazy = LazyImages(DataSpec(kind="image", channels=1, resolution=2), 5, load, has_labels=True)
    picked = lazy.subset(torch.tensor([1, 3]))
    assert len(picked) == 2 and int(picked[1][0][0, 0, 0]) == 4 and picked[1][1] == 1
    both = picked.mirrored()
    assert len(both) == 4
    assert int(both[3][0][0, 0, -1]) == 4 and int(both[3][0][0, 0, 0]) == 0 and both[3][1] == 1
