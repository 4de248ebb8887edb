"""StyleGAN2's objective: the paper's settings, lazy phases and their scaling, path length, state, resume."""
from __future__ import annotations

import math

import pytest
import torch

from gancli import checkpoint as ckpt_io
from gancli.errors import GancliError
from gancli.testing import check_family
from gancli_plugin_stylegan.stylegan2.config import StyleGAN2Config
from gancli_plugin_stylegan.stylegan2.objective import path_length_penalty, path_lengths
from stylegan_testkit import build_tiny, make_step, real_batch, spec, train_tiny


def test_paper_defaults():
    c = StyleGAN2Config()
    assert (c.z_dim, c.w_dim, c.mapping_layers, c.mapping_lr_multiplier, c.w_avg_beta) == (512, 512, 8, 0.01, 0.995)
    assert (c.fmap_base, c.fmap_max, c.resample_taps) == (16384, 512, (1.0, 3.0, 3.0, 1.0))  # config F
    assert (c.lr, c.beta1, c.beta2, c.eps) == (0.002, 0.0, 0.99, 1e-8)
    assert (c.r1_gamma, c.r1_interval) == (10.0, 16)
    assert (c.pl_weight, c.pl_interval, c.pl_decay, c.pl_batch_shrink) == (2.0, 4, 0.01, 2)
    assert c.style_mixing_prob == 0.9 and c.mbstd_group_size == 4
    assert StyleGAN2Config.train_defaults == {"batch_size": 32, "ema": True, "ema_half_life_kimg": 10.0}
    from gancli_plugin_stylegan.stylegan2.model import build

    gan = build(c, spec(resolution=1024, channels=3))
    G, D = gan.generator, gan.discriminator
    # config F: channel_base 32768 / res up to 512 maps (stylegan2-ada SynthesisNetwork's channels_dict)
    assert [b.conv1.out_channels for b in G.synthesis.blocks] == [512, 512, 512, 512, 512, 256, 128, 64, 32]
    assert G.num_ws == 18 and G.layer_resolutions[-2:] == [1024, 1024]
    assert D.from_rgb.conv.out_channels == 32 and D.dense.linear.out_features == 512 and D.mbstd.group_size == 4
    g_params = sum(p.numel() for p in G.parameters())
    assert 28e6 < g_params < 32e6  # NVlabs' config-F G at 1024²: 30.0 M parameters


def test_phases_are_d_lazy_r1_g_and_lazy_path_length():
    phases = build_tiny(resolution=16, family="stylegan2").objective.phases()
    assert [(p.name, p.network, p.interval, p.real) for p in phases] == [
        ("D", "D", 1, "new"), ("Dreg", "D", 16, "last"), ("G", "G", 1, "none"), ("Gpl", "G", 4, "none")]
    none = build_tiny(resolution=16, family="stylegan2", r1_gamma=0.0, pl_weight=0.0).objective.phases()
    assert [p.name for p in none] == ["D", "G"]


def test_lazy_intervals_scale_both_optimizers_lr_and_betas():
    """stylegan2-ada training_loop.py: mb_ratio c = k / (k + 1), lr·c, β^c, for G (k = 4) and D (k = 16).
    By hand: D c = 16/17 = 0.941176…, lr 0.002·16/17 = 0.00188235…, β2 = exp(ln 0.99 · 16/17) = 0.9905855;
    G c = 4/5, lr 0.0016, β2 = exp(ln 0.99 · 0.8) = 0.9919920. β1 = 0^c = 0."""
    gan = build_tiny(resolution=16, family="stylegan2")
    opt_g, opt_d = gan.objective.optimizers(gan.generator, gan.discriminator)
    (g,), (d,) = opt_g.param_groups, opt_d.param_groups
    assert d["lr"] == pytest.approx(0.00188235294, rel=1e-9)
    assert d["betas"][0] == 0.0 and d["betas"][1] == pytest.approx(0.9905855, abs=1e-7)
    assert g["lr"] == pytest.approx(0.0016, rel=1e-12)
    assert g["betas"][0] == 0.0 and g["betas"][1] == pytest.approx(0.9919920, abs=1e-7)
    # no lazy regularization (interval 1, or the regularizer off): the settings as given
    plain = build_tiny(resolution=16, family="stylegan2", r1_interval=1, pl_weight=0.0)
    opt_g, opt_d = plain.objective.optimizers(plain.generator, plain.discriminator)
    for group in (opt_g.param_groups[0], opt_d.param_groups[0]):
        assert group["lr"] == 0.002 and tuple(group["betas"]) == (0.0, 0.99)


def test_lazy_passes_scale_their_loss_by_the_interval():
    gan = build_tiny(resolution=16, family="stylegan2")
    G, D, objective = gan.generator.train(), gan.discriminator, gan.objective
    s = make_step(G, D, real_batch(8, resolution=16), index=0)
    r1 = objective.d_regularization(s)
    assert r1["loss"].item() == pytest.approx(0.5 * 10.0 * 16 * r1["r1"].item(), rel=1e-6)
    pl = objective.g_regularization(make_step(G, D, None, batch_size=8, device="cpu", phase_index=3))
    assert pl["loss"].item() == pytest.approx(2.0 * 4 * pl["pl_penalty"].item(), rel=1e-6)


def _linear_generator(jacobian: torch.Tensor, layers: int, dim: int, image: tuple[int, int, int]):
    """g(w) = J·vec(w) as an image: a generator whose Jacobian is J everywhere."""
    def g(ws: torch.Tensor) -> torch.Tensor:
        return (ws.flatten(1) @ jacobian.T).reshape(ws.shape[0], *image)
    return g


def test_path_length_penalty_is_zero_for_a_scaled_orthogonal_jacobian_at_the_target_length():
    """For J = a·Q (Q orthogonal) ‖Jᵀy‖ = a‖y‖; with y = ±1/√(H·W) per pixel ‖y‖² = C, so every example's length
    √(‖Jᵀy‖² / layers) is a·√(C / layers): at that target a the penalty is 0; a Jacobian that is not a scaled
    orthogonal map, or the right map at another target, gives a positive penalty."""
    g = torch.Generator().manual_seed(0)
    layers, dim, image = 2, 8, (1, 4, 4)  # 16 w values → 16 pixels
    n = 32
    q, _ = torch.linalg.qr(torch.randn(16, 16, generator=g, dtype=torch.float64))
    scale = 1.7
    target = torch.tensor(scale * math.sqrt(1 / layers), dtype=torch.float64)
    signs = torch.randint(0, 2, (n, *image), generator=g).double() * 2 - 1
    noise = signs / math.sqrt(image[1] * image[2])

    def penalty_for(jacobian, pl_mean):
        ws = torch.randn(n, layers, dim, generator=g, dtype=torch.float64, requires_grad=True)
        lengths = path_lengths(_linear_generator(jacobian, layers, dim, image)(ws), ws, noise)
        return path_length_penalty(lengths, pl_mean, 0.01)

    penalty, new_mean = penalty_for(scale * q, target)
    assert penalty.item() == pytest.approx(0.0, abs=1e-20)
    assert new_mean.item() == pytest.approx(target.item(), rel=1e-12)  # a at the lengths stays there
    wrong_target, _ = penalty_for(scale * q, target * 1.5)
    assert wrong_target.item() > 0.1 * target.item() ** 2
    stretched = scale * q @ torch.diag(torch.linspace(0.3, 2.0, 16, dtype=torch.float64))
    not_orthogonal, _ = penalty_for(stretched, target)
    assert not_orthogonal.item() > 1e-3


def test_the_path_length_pass_moves_pl_mean_by_the_decay_and_trains_g():
    gan = build_tiny(resolution=16, family="stylegan2")
    G, D, objective = gan.generator.train(), gan.discriminator, gan.objective
    assert objective.pl_mean.item() == 0.0
    terms = objective.g_regularization(make_step(G, D, None, batch_size=8, device="cpu", phase_index=3))
    assert objective.pl_mean.item() == pytest.approx(0.01 * terms["pl_length"].item(), rel=1e-6)
    terms["loss"].backward()
    grads = [p.grad for name, p in G.named_parameters() if name.startswith("synthesis") and "noise" not in name]
    assert any(gr is not None and gr.abs().sum() > 0 for gr in grads)
    state = objective.state_tensors()
    other = build_tiny(resolution=16, family="stylegan2").objective
    other.load_state_tensors(state)
    assert torch.equal(other.pl_mean, objective.pl_mean.cpu())


def test_the_path_length_pass_uses_half_the_batch():
    gan = build_tiny(resolution=16, family="stylegan2")
    seen = []
    hook = gan.generator.synthesis.register_forward_hook(lambda m, args, out: seen.append(out.shape[0]))
    gan.objective.g_regularization(make_step(gan.generator.train(), gan.discriminator, None, batch_size=8,
                                             device="cpu", phase_index=3))
    hook.remove()
    assert seen == [4]


def test_conformance_kit():
    report = check_family("stylegan2")
    assert any("resume is bit-exact" in line for line in report.passed)


def test_resume_is_bit_exact_with_both_lazy_regularizers_due(tmp_path):
    overrides = ["r1_interval=2", "pl_interval=3"]
    straight = train_tiny(tmp_path / "straight", steps=6, overrides=overrides, family="stylegan2")
    train_tiny(tmp_path / "resumed", steps=4, overrides=overrides, family="stylegan2")
    resumed = train_tiny(tmp_path / "resumed", steps=6, overrides=overrides, family="stylegan2", resume=True)
    a, b = ckpt_io.read(straight.last_checkpoint), ckpt_io.read(resumed.last_checkpoint)
    ta, tb = a.tensors(""), b.tensors("")
    assert set(ta) == set(tb)
    assert [k for k in ta if not torch.equal(ta[k], tb[k])] == []
    pl = [k for k in ta if k.endswith("pl_mean")]
    assert pl and all(ta[k].item() > 0 for k in pl)  # the path-length state is in the checkpoint and moved


def test_user_errors_are_one_line():
    from gancli_plugin_stylegan.stylegan2.model import build

    with pytest.raises(GancliError, match="8 to 1024"):
        build(StyleGAN2Config(), spec(resolution=4))
    with pytest.raises(GancliError, match="divisible by 4"):
        gan = build_tiny(resolution=16, family="stylegan2")
        gan.objective.d_loss(make_step(gan.generator, gan.discriminator, real_batch(6, resolution=16)))


def test_losses_and_both_regularizers_run_under_bf16_autocast():
    gan = build_tiny(resolution=16, family="stylegan2")
    G, D, objective = gan.generator.train(), gan.discriminator, gan.objective

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16)

    real = real_batch(8, resolution=16)
    for loss, s in ((objective.d_loss, make_step(G, D, real, autocast=autocast)),
                    (objective.d_regularization, make_step(G, D, real, autocast=autocast)),
                    (objective.g_loss, make_step(G, D, None, batch_size=8, device="cpu", autocast=autocast)),
                    (objective.g_regularization, make_step(G, D, None, batch_size=8, device="cpu", autocast=autocast))):
        terms = loss(s)
        assert terms["loss"].dtype == torch.float32 and torch.isfinite(terms["loss"]), loss.__name__
        terms["loss"].backward()
    assert torch.isfinite(objective.pl_mean) and objective.pl_mean.item() > 0


def test_logistic_loss_and_r1_every_step_when_not_lazy():
    import torch.nn.functional as F

    gan = build_tiny(resolution=16, family="stylegan2", r1_interval=1)
    G, D, objective = gan.generator, gan.discriminator, gan.objective
    assert [p.name for p in objective.phases()] == ["D", "G", "Gpl"]
    real = real_batch(8, resolution=16)
    terms = objective.d_loss(make_step(G, D, real, seed=1))
    x = real.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x).sum(), x)
    r1 = grad.square().flatten(1).sum(1).mean()
    assert terms["r1"].item() == pytest.approx(r1.item(), rel=1e-5)
    assert terms["loss"].item() == pytest.approx(terms["adv"].item() + 5.0 * r1.item(), rel=1e-5)
    with torch.no_grad():
        assert terms["adv"].item() - F.softplus(-D(real)).mean().item() > 0  # softplus(D(G(z))) of the fakes
    bf16 = objective.d_loss(make_step(G, D, real, seed=1, autocast=lambda: torch.autocast("cpu", torch.bfloat16)))
    assert bf16["r1"].item() == pytest.approx(terms["r1"].item(), rel=1e-6)  # D in fp32 for the penalty


def test_mapping_lr_multiplier_and_the_synthesis_rates():
    """Adam moves each stored weight by ≈ lr: a mapping layer's effective weight by lr · 0.01 of its scale;
    the modulated weights have no runtime scale (demodulation normalises them), so they move by lr itself."""
    gan = build_tiny(resolution=16, family="stylegan2", lr=0.002, pl_weight=0.0)
    G, D = gan.generator, gan.discriminator
    opt_g, _ = gan.objective.optimizers(G, D)
    layer = G.mapping.layers[1]
    conv = G.synthesis.blocks[1].conv1
    before, weight_before = layer.effective_weight.detach().clone(), conv.weight.detach().clone()
    g = torch.Generator().manual_seed(0)
    for p in G.parameters():
        p.grad = torch.randn(p.shape, generator=g)
    opt_g.step()
    fan_in = before[0].numel()
    moved = (layer.effective_weight.detach() - before).abs().mean().item() / (layer.gain / math.sqrt(fan_in))
    assert moved == pytest.approx(0.002 * 0.01, rel=1e-3)
    assert (conv.weight.detach() - weight_before).abs().mean().item() == pytest.approx(0.002, rel=1e-3)


def test_style_mixing_uses_two_latents_and_only_the_first_moves_w_avg():
    from gancli_plugin_stylegan.mixing import mix_styles
    from gancli_plugin_stylegan.mixing import generate_with_ws

    gan = build_tiny(resolution=16, family="stylegan2")
    G, D = gan.generator.train(), gan.discriminator  # noise strengths start at 0: random noise adds nothing
    fake, ws = generate_with_ws(make_step(G, D, real_batch(8, resolution=16), seed=3), 1.0)
    s = make_step(G, D, real_batch(8, resolution=16), seed=3)
    z1, z2 = s.latents(), s.latents()
    mixes, points = s.rand() < 1.0, s.randint(G.num_ws - 1) + 1
    crossover = torch.where(mixes, points, torch.full_like(points, G.num_ws))
    with torch.no_grad():
        w1, w2 = G.mapping(z1, update_w_avg=False), G.mapping(z2, update_w_avg=False)
        expected = mix_styles(w1, w2, crossover)
        image = G.synthesis(expected, noise_mode="none")
    assert torch.allclose(ws, expected, atol=1e-6) and torch.allclose(fake, image, atol=1e-5)
    assert torch.allclose(G.w_avg, (1 - 0.995) * w1[:, 0].mean(dim=0), atol=1e-7)  # w_avg started at 0


def test_w_avg_moves_in_training_and_round_trips_through_the_checkpoint(tmp_path):
    import gancli
    from stylegan_testkit import image_data

    result = train_tiny(tmp_path / "run", steps=3, checkpoint_every=1, family="stylegan2", ema=True,
                        data=image_data(16, resolution=16))
    ckpt = ckpt_io.read(result.last_checkpoint)
    g_avg, ema_avg = ckpt.tensors("G.")["mapping.w_avg"], ckpt.tensors("G_ema.")["mapping.w_avg"]
    assert g_avg.abs().sum() > 0 and torch.equal(g_avg, ema_avg)
    assert torch.equal(gancli.load(result.last_checkpoint, device="cpu").w_avg, ema_avg)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text()
    assert '"dreg/r1"' in lines and '"gpl/pl_penalty"' in lines and '"g/loss"' in lines


@pytest.mark.parametrize("augment", [
    pytest.param({"augment": "ada", "ada_p": 0.5}, marks=pytest.mark.skipif(
        not __import__("gancli.train.augmentation", fromlist=["x"]).grid_sample_twice_differentiable(),
        reason="this torch has no second derivative of grid_sample (the trainer refuses ADA's geometry with it)")),
    {"augment": "diffaugment"},
])
def test_trains_with_augmentation_through_every_phase(tmp_path, augment):
    """D's inputs are augmented in D, Dreg (R1 through the augmentation), G; Gpl does not call D."""
    import json

    from stylegan_testkit import image_data

    result = train_tiny(tmp_path / "run", steps=3, family="stylegan2", data=image_data(16, resolution=16),
                        overrides=["r1_interval=2", "pl_interval=2"], **augment)
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert result.step == 3 and all(math.isfinite(v) for line in lines for v in line.values() if isinstance(v, float))
    assert any("dreg/r1" in line for line in lines) and any("gpl/pl_penalty" in line for line in lines)
    if augment["augment"] == "ada":
        assert all("augment/p" in line for line in lines)
