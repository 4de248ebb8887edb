import numpy as np
import pytest
import torch

from gancli.metrics.image_batches import match_channels, to_pixels


def test_uint8_pixels_and_generator_output_map_to_the_same_values():
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 1, 16, 16)
    as_generator_output = pixels.astype(np.float32) / 127.5 - 1.0
    assert torch.equal(to_pixels(pixels), to_pixels(as_generator_output))


def test_generator_output_is_rounded_and_clamped_to_8_bit_levels():
    values = torch.tensor([-1.5, -1.0, -0.999, 0.0, 0.999, 1.0, 2.0]).view(1, 1, 1, -1)
    assert to_pixels(values).flatten().tolist() == [0.0, 0.0, 0.0, 128.0, 255.0, 255.0, 255.0]


def test_grey_batches_without_a_channel_axis_become_one_channel():
    assert to_pixels(np.zeros((4, 8, 8), dtype=np.uint8)).shape == (4, 1, 8, 8)


def test_channels_are_repeated_or_averaged():
    grey = torch.rand(2, 1, 4, 4)
    colour = match_channels(grey, 3)
    assert colour.shape == (2, 3, 4, 4)
    torch.testing.assert_close(match_channels(colour, 1), grey)
    with pytest.raises(ValueError):
        match_channels(torch.rand(1, 2, 4, 4), 3)


def test_integer_images_other_than_uint8_are_refused():
    with pytest.raises(ValueError):
        to_pixels(np.zeros((1, 1, 2, 2), dtype=np.int64))
