"""2-D toy distributions and the VEEGAN/PacGAN mode-coverage metric."""
from __future__ import annotations

import math

import pytest
import torch

from gancli.data.toys import TOYS, sample_toy
from gancli.errors import GancliError
from gancli.metrics.modes import mode_coverage

WITHIN_3_STD_2D = 1.0 - math.exp(-4.5)  # P(‖x − μ‖ < 3σ) for an isotropic 2-D Gaussian


@pytest.mark.parametrize("name", sorted(TOYS))
def test_toys_are_float32_points_fixed_by_the_seed(name):
    a = sample_toy(name, 500, seed=3)
    b = sample_toy(name, 500, seed=3)
    c = sample_toy(name, 500, seed=4)
    assert a.dtype == torch.float32 and a.shape == (500, 2)
    assert torch.isfinite(a).all()
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_ring8_and_grid25_use_the_pacgan_settings():
    ring, grid = TOYS["ring8"], TOYS["grid25"]
    assert ring.std == 0.01 and grid.std == 0.05
    assert ring.num_modes == 8 and grid.num_modes == 25
    # 8 distinct means on the unit circle, 45° apart (not linspace(0, 2π, 8), which repeats one)
    torch.testing.assert_close(ring.centers.norm(dim=1), torch.ones(8))
    gaps = torch.pdist(ring.centers)
    assert gaps.min().item() == pytest.approx(2 * math.sin(math.pi / 8), rel=1e-5)
    values = {-4.0, -2.0, 0.0, 2.0, 4.0}
    assert {(x, y) for x, y in grid.centers.tolist()} == {(x, y) for x in values for y in values}


def test_unknown_toy_is_a_user_error():
    with pytest.raises(GancliError, match="ring8"):
        sample_toy("ring7", 10)


def test_moons_lie_on_two_interleaving_half_circles():
    points = sample_toy("moons", 2000, seed=0)
    upper_error = (points.norm(dim=1) - 1.0).abs()
    lower_error = ((points - torch.tensor([1.0, 0.5])).norm(dim=1) - 1.0).abs()
    assert (torch.minimum(upper_error, lower_error) < 0.3).all()
    assert TOYS["moons"].centers is None


def test_spiral_has_two_arms_within_radius_three():
    points = sample_toy("spiral", 2000, seed=0)
    assert points.norm(dim=1).max() < 3.3
    assert TOYS["spiral"].centers is None
    # the arms are point reflections of each other, so the cloud is centred on the origin
    assert points.mean(0).norm() < 0.2


def test_true_ring8_samples_capture_every_mode_with_the_gaussian_high_quality_share():
    ring = TOYS["ring8"]
    result = mode_coverage(sample_toy("ring8", 2500, seed=0), ring.centers, ring.std)
    assert (result.modes_captured, result.total_modes) == (8, 8)
    assert result.high_quality_share == pytest.approx(WITHIN_3_STD_2D, abs=0.008)
    assert result.reverse_kl < 0.02
    assert sum(result.counts) == round(result.high_quality_share * 2500)

    # "within k std" is the Euclidean distance over σ: the 2-D law is 1 − exp(−k²/2) for every k
    big = sample_toy("ring8", 20000, seed=1)
    one_std = mode_coverage(big, ring.centers, ring.std, threshold_std=1.0)
    assert one_std.high_quality_share == pytest.approx(1.0 - math.exp(-0.5), abs=0.01)


def test_true_grid25_samples_capture_every_mode():
    grid = TOYS["grid25"]
    result = mode_coverage(sample_toy("grid25", 2500, seed=0), grid.centers, grid.std)
    assert (result.modes_captured, result.total_modes) == (25, 25)
    assert result.high_quality_share == pytest.approx(WITHIN_3_STD_2D, abs=0.008)
    assert result.reverse_kl < 0.05


def test_a_collapsed_generator_captures_one_mode_with_maximal_reverse_kl():
    ring = TOYS["ring8"]
    collapsed = ring.centers[3] + 0.005 * torch.randn(2500, 2, generator=torch.Generator().manual_seed(0))
    result = mode_coverage(collapsed, ring.centers, ring.std)
    assert result.modes_captured == 1
    assert result.high_quality_share == 1.0
    assert result.reverse_kl == pytest.approx(math.log(8))
    assert result.counts[3] == 2500


def test_reverse_kl_of_an_even_split_over_some_modes():
    grid = TOYS["grid25"]
    points = grid.centers[:5].repeat(100, 1)  # 5 of 25 modes, evenly
    result = mode_coverage(points, grid.centers, grid.std)
    assert result.modes_captured == 5
    assert result.reverse_kl == pytest.approx(math.log(25 / 5))


def test_a_mode_counts_once_it_has_min_count_high_quality_samples():
    ring = TOYS["ring8"]
    points = torch.cat([ring.centers[0].repeat(50, 1), ring.centers[1:2], torch.tensor([[0.0, 0.0]])])
    default = mode_coverage(points, ring.centers, ring.std)
    assert default.modes_captured == 2  # one sample is enough, as in VEEGAN and PacGAN
    assert default.high_quality_share == pytest.approx(51 / 52)
    assert mode_coverage(points, ring.centers, ring.std, min_count=2).modes_captured == 1


def test_samples_far_from_every_mode_are_not_high_quality():
    ring = TOYS["ring8"]
    result = mode_coverage(torch.zeros(100, 2), ring.centers, ring.std)
    assert result.modes_captured == 0
    assert result.high_quality_share == 0.0
    assert math.isnan(result.reverse_kl)
    assert result.as_dict()["total_modes"] == 8
