"""The progressive-growing schedule: levels, fade-in α and batch sizes as a function of images seen."""
import pytest

from gancli.growth import GrowthSchedule


def test_levels_fade_in_linearly_then_stabilise():
    s = GrowthSchedule(target_resolution=32, kimg_per_phase=1.0)  # 1000 images per phase
    assert [s.state(i).resolution for i in (0, 999, 1000, 2999, 3000, 5000, 10**6)] == [4, 4, 8, 8, 16, 32, 32]
    assert s.state(0).alpha == 1.0 and not s.state(0).fading
    assert s.state(1000).alpha == 0.0 and s.state(1000).fading
    assert s.state(1500).alpha == pytest.approx(0.5) and s.state(1500).fading
    assert s.state(2000).alpha == 1.0 and not s.state(2000).fading
    assert s.state(3250).alpha == pytest.approx(0.25) and s.state(3250).resolution == 16
    assert s.images_until_full_resolution() == 7000 and s.levels == 3


def test_batch_size_follows_the_resolution_and_bad_schedules_are_refused():
    s = GrowthSchedule(target_resolution=16, kimg_per_phase=1.0, batch_sizes={4: 64, 8: 32, 16: 16})
    assert [s.batch_size(i) for i in (0, 1200, 4000)] == [64, 32, 16]
    assert GrowthSchedule(target_resolution=16).batch_size(0) is None
    for bad in ({"target_resolution": 24}, {"target_resolution": 8, "start_resolution": 16},
                {"target_resolution": 8, "kimg_per_phase": 0}):
        with pytest.raises(ValueError):
            GrowthSchedule(**bad)


def test_reals_fade_from_the_previous_resolution_to_the_current_one():
    import torch

    from gancli.growth import reals_at
    from gancli.nn import downscale2d, upscale2d

    real = torch.rand(2, 1, 32, 32) * 2 - 1
    at8 = downscale2d(real, 4)
    assert torch.equal(reals_at(real, 8), at8)
    assert torch.equal(reals_at(real, 8, torch.tensor(1.0)), at8)
    start = reals_at(real, 8, torch.tensor(0.0))
    assert torch.allclose(start, upscale2d(downscale2d(real, 8)), atol=1e-6)
    middle = reals_at(real, 8, 0.25)
    assert torch.allclose(middle, 0.75 * start + 0.25 * at8, atol=1e-6)
    # full size: the same pixels, nearest-upsampled back to the batch's size
    assert torch.equal(reals_at(real, 8, 0.25, full_size=True), upscale2d(middle, 4))
    assert torch.equal(reals_at(real, 32, full_size=True), real)


def test_feature_maps_follow_the_references_nf_rule():
    from gancli.growth import feature_maps

    # NVlabs defaults (8192, 512): 512 channels from 4² to 32², then halving per doubling
    assert [feature_maps(r, 8192, 512) for r in (4, 8, 16, 32, 64, 128, 256, 512, 1024)] == \
        [512, 512, 512, 512, 256, 128, 64, 32, 16]
    assert feature_maps(2, 8192, 512) == 512 and feature_maps(4, 256, 128) == 128 and feature_maps(32, 256, 128) == 16
    assert feature_maps(64, 8192, 512, fmap_decay=0.5) == 512 and feature_maps(1024, 16, 512) == 0
