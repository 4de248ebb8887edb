"""gancli.augment: DiffAugment and ADA are identities at p = 0, differentiable, faithful to their references;
ADA's p controller rises when D calls every real real and falls otherwise; its state round-trips exactly."""
from __future__ import annotations

import math

import pytest
import torch

from gancli.augment import ADA_PIPELINES, AdaController, TorchDraws, ada, diffaugment


def images(n=8, channels=3, size=16, seed=0, requires_grad=False):
    x = torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    return x.requires_grad_(requires_grad)


def draws(seed=1):
    return TorchDraws("cpu", torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("pipeline", list(ADA_PIPELINES))
@pytest.mark.parametrize("channels", [1, 3])
def test_ada_is_the_identity_at_p_zero(pipeline, channels):
    x = images(channels=channels)
    assert ada(x, 0.0, pipeline=pipeline, draws=draws()) is x
    # p > 0 but every draw says "not applied": the input itself, bit for bit, for those examples
    tiny = ada(x, 1e-9, pipeline=pipeline, draws=draws())
    assert torch.equal(tiny, x)


def test_diffaugment_is_the_identity_at_p_zero_and_changes_every_image_at_one():
    x = images()
    assert torch.equal(diffaugment(x, p=0.0, draws=draws()), x)
    out = diffaugment(x, draws=draws())
    assert out.shape == x.shape
    assert all(not torch.equal(out[i], x[i]) for i in range(len(x)))


NEEDS_GRID_SAMPLE_TWICE = pytest.mark.skipif(
    not __import__("gancli.train.augmentation", fromlist=["x"]).grid_sample_twice_differentiable(),
    reason="this torch has no second derivative of grid_sample (the trainer refuses ADA's geometry with it)")


@pytest.mark.parametrize("augment", [
    lambda x, d: diffaugment(x, draws=d),
    pytest.param(lambda x, d: ada(x, 1.0, draws=d), marks=NEEDS_GRID_SAMPLE_TWICE),
    pytest.param(lambda x, d: ada(x, 0.5, pipeline="geom", draws=d), marks=NEEDS_GRID_SAMPLE_TWICE),
])
def test_augmentations_are_differentiable_twice(augment):
    """Gradients reach the input (G's gradient through D's augmented view of its fakes), and an R1-style penalty
    on the input gradient back-propagates to a critic's weights through the augmentation."""
    x = images(channels=3, requires_grad=True)
    weight = torch.randn(3, 16, 16, generator=torch.Generator().manual_seed(5), requires_grad=True)
    score = (augment(x, draws()) * weight).sum()
    (grad,) = torch.autograd.grad(score, x, create_graph=True)
    assert grad.abs().sum() > 0 and torch.isfinite(grad).all()
    grad.square().sum().backward()
    assert weight.grad is not None and weight.grad.abs().sum() > 0


def test_diffaugment_transforms_match_the_reference_definitions():
    g = torch.Generator().manual_seed(3)
    x = images(n=6, channels=3, size=16)
    # translation: an integer shift of at most ⌊16/8 + ½⌋ = 2 pixels with zero fill
    shifted = diffaugment(x, "translation", draws=draws(4))
    for i in range(6):
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                   if torch.equal(shifted[i], _shift(x[i], dy, dx))]
        assert matches, f"image {i} is not an integer shift of its input"
    # cutout: exactly a square of ⌊16/2 + ½⌋ = 8 pixels (or its part inside the image) zeroed, the rest kept
    ones = torch.ones(6, 1, 16, 16)
    cut = diffaugment(ones, "cutout", draws=draws(5))
    for i in range(6):
        zero = (cut[i, 0] == 0).nonzero()
        rows, cols = zero[:, 0].unique(), zero[:, 1].unique()
        assert 4 <= len(rows) <= 8 and 4 <= len(cols) <= 8 and len(zero) == len(rows) * len(cols)
    # colour on a grey (all channels equal) image: saturation does nothing, brightness and contrast are affine
    grey = images(n=6, channels=1).expand(-1, 3, -1, -1)
    coloured = diffaugment(grey, "color", draws=draws(6))
    assert torch.allclose(coloured[:, 0], coloured[:, 1], atol=1e-6)
    del g


def _shift(image, dy, dx):
    """image shifted so that out[y, x] = image[y + dy, x + dx], zero outside."""
    out = torch.zeros_like(image)
    h, w = image.shape[-2:]
    ys, xs = slice(max(0, -dy), min(h, h - dy)), slice(max(0, -dx), min(w, w - dx))
    yt, xt = slice(max(0, dy), min(h, h + dy)), slice(max(0, dx), min(w, w + dx))
    out[:, ys, xs] = image[:, yt, xt]
    return out


def smooth_images(n=6, channels=1, size=16, seed=0):
    """Band-limited images (bilinear upsampling of 4×4 noise): resampling filters pass them almost unchanged."""
    coarse = torch.rand(n, channels, 4, 4, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


def test_ada_pixel_blitting_gives_flips_rotations_and_integer_shifts():
    """With 'blit' at p = 1 every output is one of the 8 flips/rotations of its input, shifted by integers
    (reflection at the border). As in stylegan2-ada, blits run through the one geometric resampling (×2 up with
    the sym6 filter, grid_sample, ×2 down), which is exact for shifts and x-flips but not for 90° rotations of
    high frequencies (sym6 is not symmetric), so the check uses band-limited images."""
    x = smooth_images()
    out = ada(x, 1.0, pipeline="blit", draws=draws(7))
    for i in range(6):
        best = min(
            (out[i, :, 4:-4, 4:-4] - _shift(torch.rot90(base, k, dims=(1, 2)), dy, dx)[:, 4:-4, 4:-4]).abs().max().item()
            for base in (x[i], x[i].flip(2)) for k in range(4) for dy in range(-2, 3) for dx in range(-2, 3)
        )
        assert best < 0.1, (i, best)  # measured ≤ 0.042 on these images; a wrong blit is off by ~1
    shifted = ada(images(n=6, channels=1), 1.0, pipeline="blit", draws=draws(7))
    assert shifted.shape == (6, 1, 16, 16)


def test_ada_geometry_keeps_a_constant_image_constant_and_colour_keeps_a_grey_image_grey():
    """Reflect padding of a constant is constant and the sym6 filters have DC gain 1, so any geometric
    transform leaves a constant image as it is; hue and saturation rotate and scale about the luma axis,
    so a grey image stays grey (brightness, contrast and luma flip act on it as on a 1-channel image)."""
    constant = torch.full((8, 3, 16, 16), 0.3)
    assert torch.allclose(ada(constant, 1.0, pipeline="geom", draws=draws(8)), constant, atol=1e-5)
    grey = images(n=8, channels=1).expand(-1, 3, -1, -1).contiguous()
    out = ada(grey, 1.0, pipeline="color", draws=draws(9))
    assert torch.allclose(out[:, 0], out[:, 1], atol=1e-5) and torch.allclose(out[:, 1], out[:, 2], atol=1e-5)
    one_channel = ada(grey[:, :1], 1.0, pipeline="color", draws=draws(9))
    assert one_channel.shape == (8, 1, 16, 16)


def test_ada_applies_each_transform_with_probability_p():
    x = images(n=2000, channels=1, size=8)
    flipped_or_rotated = ada(x, 0.25, pipeline="blit", draws=draws(10))
    changed = (flipped_or_rotated != x).flatten(1).any(dim=1).float().mean().item()
    # each of x-flip, rotate90, shift is applied with p and then changes the image with probability 1/2, 3/4,
    # and 24/25 (a shift of 0 in both axes): 1 − (1 − p/2)(1 − 3p/4)(1 − 24p/25) ≈ 0.43 at p = 0.25
    expected = 1 - (1 - 0.25 / 2) * (1 - 0.75 * 0.25) * (1 - 0.25 * 24 / 25)
    assert abs(changed - expected) < 0.04


def test_p_rises_when_d_calls_every_real_real_and_falls_otherwise():
    controller = AdaController()  # target 0.6, every 4 steps, 500 kimg per unit of p
    step = 32 * 4 / 500_000  # batch 32, interval 4: the change per adjustment
    for done in range(1, 9):
        controller.observe(torch.full((32,), 3.0))  # D says "real" on every real: r_t = 1 > 0.6
        controller.end_step(done, 32)
    assert controller.p == pytest.approx(2 * step, rel=1e-12)
    for done in range(9, 17):
        controller.observe(torch.tensor([1.0, -1.0] * 16))  # r_t = 0 < 0.6
        controller.end_step(done, 32)
    assert controller.p == 0.0  # fell back, and never below 0
    rising = AdaController(p=0.5)
    rising.observe(torch.tensor([1.0] * 7 + [-1.0] * 3))  # r_t = 0.4
    assert rising.end_step(4, 64) == pytest.approx(0.5 - 64 * 4 / 500_000)
    assert rising.end_step(8, 64) == pytest.approx(0.5 - 64 * 4 / 500_000)  # no observations: p unchanged
    # 500 kimg of over-fitting take p from 0 to 1
    fast = AdaController()
    for done in range(1, 500_000 // 64 + 1):
        fast.observe(torch.ones(1))
        fast.end_step(done, 64)
    assert fast.p == pytest.approx(1.0, abs=64 * 4 / 500_000)


def test_the_controller_state_round_trips_exactly_and_reduces_over_processes():
    a = AdaController()
    for done in range(1, 7):  # two adjustments, then two steps of a third interval observed
        a.observe(torch.randn(16, generator=torch.Generator().manual_seed(done)) + 1.0)
        a.end_step(done, 16)
    state = a.state_tensors()
    assert set(state) == {"p", "sign_sum", "sign_count"} and all(t.dtype == torch.float64 for t in state.values())
    b = AdaController()
    b.load_state_tensors({k: v.clone() for k, v in state.items()})
    for controller in (a, b):
        controller.observe(torch.full((16,), 1.0))
        controller.end_step(7, 16)
        controller.observe(torch.full((16,), 1.0))
        controller.end_step(8, 16)
    assert a.p == b.p and a.p > 0 and torch.equal(a.state_tensors()["sign_sum"], b.state_tensors()["sign_sum"])
    # two processes, one half each, reducing with a sum: the p of one process that saw everything
    whole, halves = AdaController(), [AdaController(), AdaController()]
    logits = torch.tensor([1.0, 1.0, 1.0, -1.0, 1.0, -1.0, -1.0, -1.0])  # r_t = 0 overall, ±0.5 per half
    whole.observe(logits)
    halves[0].observe(logits[:4])
    halves[1].observe(logits[4:])
    totals = [torch.stack([h._sum, h._count]) for h in halves]
    whole.end_step(4, 8)
    for h in halves:
        h.end_step(4, 8, reduce_sum=lambda t: totals[0] + totals[1])
    assert halves[0].p == halves[1].p == whole.p


def test_user_errors():
    with pytest.raises(ValueError, match="pipeline"):
        ada(images(), 0.5, pipeline="bgcfnc")
    with pytest.raises(ValueError, match="channels"):
        ada(torch.zeros(2, 2, 8, 8), 0.5)
    with pytest.raises(ValueError, match="policy"):
        diffaugment(images(), "colour")
    assert math.isnan(AdaController().statistic)


def _step(n, rank=0, world_size=1, seed=3):
    from gancli.objective import Step

    net = torch.nn.Identity()
    return Step(index=5, real=None, labels=None, G=net, D=net, z_dim=1, num_classes=0, seed=seed, phase_index=1,
                rank=rank, world_size=world_size, batch_size=n, device="cpu")


@pytest.mark.parametrize("augment", [
    lambda x, s: diffaugment(x, draws=s),
    lambda x, s: diffaugment(x, p=0.5, draws=s),
    lambda x, s: ada(x, 0.7, draws=s),
])
def test_draws_through_a_step_do_not_depend_on_how_the_batch_is_split(augment):
    """With a Step's counter-based draws two processes with half the batch each augment their halves exactly as
    one process augments the whole batch (ADA's reflect padding is sized for the batch at hand, which moves
    nothing but rounding)."""
    x = images(n=8, channels=3)
    whole = augment(x, _step(8))
    halves = torch.cat([augment(x[4 * r: 4 * (r + 1)], _step(4, rank=r, world_size=2)) for r in range(2)])
    assert torch.allclose(whole, halves, atol=1e-5)
    assert not torch.allclose(whole, augment(x, _step(8, seed=4)), atol=1e-3)  # another run seed, other draws


@pytest.mark.parametrize("resample", ["up", "down"])
def test_the_resampling_matrices_are_upfirdn2d_with_the_sym6_filter(resample):
    """ADA's padding and resampling as matrix products: the same map as Blur (upfirdn2d) after reflect padding."""
    import torch.nn.functional as F

    from gancli.augment_geometry import SYM6, separable, upfirdn_matrix
    from gancli.nn.style import Blur

    torch.manual_seed(0)
    x = torch.randn(3, 2, 9, 14, dtype=torch.float64)
    k = len(SYM6)
    if resample == "up":
        reflect_rows, reflect_cols = (3, 5), (7, 0)
        padded = F.pad(x, [*reflect_cols, *reflect_rows], mode="reflect")
        expected = Blur(SYM6, up=2).double()(padded)
        rows = upfirdn_matrix(9, up=2, padding=((k + 1) // 2, (k - 2) // 2), reflect=reflect_rows)
        cols = upfirdn_matrix(14, up=2, padding=((k + 1) // 2, (k - 2) // 2), reflect=reflect_cols)
    else:
        x = torch.randn(3, 2, 20, 26, dtype=torch.float64)  # the ×2 image grid_sample wrote, as in _transform
        padding = ((k - 1) // 2 - 6, (k - 2) // 2 - 6)
        expected = Blur(SYM6, down=2, padding=padding, flip_filter=True).double()(x)
        rows = upfirdn_matrix(20, down=2, padding=padding, flip_filter=True)
        cols = upfirdn_matrix(26, down=2, padding=padding, flip_filter=True)
    got = separable(x, rows.double(), cols.double())
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)  # the matrices are stored in float32
