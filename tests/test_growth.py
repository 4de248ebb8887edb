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
