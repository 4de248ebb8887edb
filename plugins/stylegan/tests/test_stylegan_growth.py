"""grow = true: the Progressive GAN schedule from gancli.growth, fade-in, reals at the phase, resume mid-growth."""
from __future__ import annotations

import copy

import torch

import gancli
from gancli import checkpoint as ckpt_io
from gancli.nn import downscale2d, upscale2d
from gancli.objective import Progress
from gancli.growth import reals_at
from stylegan_testkit import build_tiny, real_batch, train_tiny

# 16 images per phase: at batch 8, two steps of 8², then two of fading in 16², two of 16², ...
GROWING = {"grow": True, "start_resolution": 8, "kimg_per_phase": 0.016}


def test_networks_grow_with_the_schedule_and_always_output_the_target_size():
    gan = build_tiny(**GROWING)
    G, D, objective = gan.generator, gan.discriminator, gan.objective
    assert G.current_resolution == 8 and D.current_resolution == 8
    z = torch.randn(4, 8)
    expected = [(0, 8, 1.0, False), (16, 16, 0.0, True), (24, 16, 0.5, False), (40, 16, 1.0, False),
                (48, 32, 0.0, True), (60, 32, 0.75, False), (1000, 32, 1.0, False)]
    for images_seen, resolution, alpha, adds in expected:
        assert objective.grow(Progress(0, images_seen), G, D) is adds
        assert G.current_resolution == resolution == D.current_resolution
        assert float(G.synthesis.fade_alpha) == alpha == float(D.fade_alpha)
        G.eval()
        assert G(z).shape == (4, 1, 32, 32)
        assert D(real_batch(4)).shape == (4,)
    assert sorted(G.synthesis.to_rgb) == ["16", "32", "4", "8"] and sorted(D.from_rgb) == ["16", "32", "4", "8"]


def test_a_fade_in_starts_where_the_smaller_network_was():
    gan = build_tiny(**GROWING)
    G, D, objective = gan.generator.eval(), gan.discriminator, gan.objective
    small_G, small_D = copy.deepcopy(G), copy.deepcopy(D)
    z, x = torch.randn(4, 8), real_batch(4)
    assert objective.grow(Progress(0, 16), G, D)  # 16² added, α = 0
    with torch.no_grad():
        assert torch.equal(G(z, noise_mode="const"), small_G(z, noise_mode="const"))
        assert torch.allclose(D(x), small_D(x), atol=1e-6)
        objective.grow(Progress(0, 20), G, D)  # α = 0.25: the new block shows
        assert not torch.allclose(G(z, noise_mode="const"), small_G(z, noise_mode="const"), atol=1e-4)


def test_reals_are_shown_at_the_network_resolution():
    """D sees the reals at its phase, blended during a fade-in, at the images' own size (NVlabs'
    growing mode: the networks take and give full-size images)."""
    x = real_batch(2)
    assert torch.equal(reals_at(x, 32, full_size=True), x)
    at16 = downscale2d(x)
    assert torch.allclose(reals_at(x, 16, full_size=True), upscale2d(at16))
    coarser = upscale2d(downscale2d(at16))
    half = reals_at(x, 16, 0.5, full_size=True)
    assert torch.allclose(half, upscale2d(0.5 * at16 + 0.5 * coarser), atol=1e-6)
    assert torch.allclose(reals_at(x, 16, 0.0, full_size=True), upscale2d(coarser), atol=1e-6)


def test_learning_rate_per_resolution_batch_schedule_and_adam_reset():
    gan = build_tiny(**GROWING, lr_per_resolution={16: 0.003}, batch_per_resolution={8: 16, 16: 8})
    G, D, objective = gan.generator, gan.discriminator, gan.objective
    opt_g, opt_d = objective.optimizers(G, D)

    def step_at(images_seen: int) -> None:
        progress = Progress(0, images_seen)
        objective.grow(progress, G, D)
        objective.begin_step(progress, G, D)
        for p in [*G.parameters(), *D.parameters()]:
            p.grad = torch.ones_like(p)
        opt_g.step()
        opt_d.step()

    step_at(0)
    assert opt_g.param_groups[0]["lr"] == 0.001 and objective.batch_size(Progress(0, 0)) == 16
    step_at(8)
    assert len(opt_g.state) > 0 and len(opt_d.state) > 0
    states_before = len(opt_g.state)
    objective.begin_step(Progress(0, 16), G, D)  # a fade-in starts: v1 resets the optimizer state
    assert len(opt_g.state) == 0 and len(opt_d.state) == 0
    assert opt_g.param_groups[0]["lr"] == 0.003 == opt_d.param_groups[0]["lr"]
    assert objective.batch_size(Progress(0, 16)) == 8 and objective.batch_size(Progress(0, 48)) is None
    step_at(20)
    assert len(opt_g.state) >= states_before
    objective.begin_step(Progress(0, 24), G, D)  # still fading: keep the moments
    assert len(opt_g.state) > 0
    objective.begin_step(Progress(0, 32), G, D)  # the fade-in ends: reset again
    assert len(opt_g.state) == 0


def test_grow_trains_and_resumes_mid_growth_bit_exactly(tmp_path):
    # 12 images per phase at batch 8: steps 0-1 at 8², step 2 fades 16² in, 3-4 stabilise it, step 5 fades 32² in
    settings = {**GROWING, "kimg_per_phase": 0.012}
    overrides = [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in settings.items()]
    straight = train_tiny(tmp_path / "straight", steps=6, overrides=overrides)
    # stopped right after the fade-in step: the resumed run must reset Adam as the fade ends, then grow 32²
    train_tiny(tmp_path / "resumed", steps=3, overrides=overrides)
    resumed = train_tiny(tmp_path / "resumed", steps=6, overrides=overrides, resume=True)
    a, b = ckpt_io.read(straight.last_checkpoint), ckpt_io.read(resumed.last_checkpoint)
    assert set(a.tensor_names) == set(b.tensor_names)
    ta, tb = a.tensors(""), b.tensors("")
    assert [k for k in ta if not torch.equal(ta[k], tb[k])] == []
    assert "G.synthesis.to_rgb.32.weight" in ta and "D.from_rgb.32.conv.weight" in ta
    assert float(ta["G_ema.synthesis.fade_alpha"]) < 1.0  # stopped while 32² fades in
    pipe = gancli.load(resumed.last_checkpoint, device="cpu")
    assert pipe.generator.current_resolution == 32
    assert pipe.sample(4, seed=0).shape == (4, 1, 32, 32)
