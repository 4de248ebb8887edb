"""The v1 objective: logistic loss + R1 in fp32, learning rates through the family's optimizers, w_avg in
checkpoints, lazy R1, user errors."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import gancli
from gancli import checkpoint as ckpt_io
from gancli.data.spec import DataSpec
from gancli.errors import GancliError
from gancli.nn import EqualizedConv2d, EqualizedLinear
from gancli.objective import Progress
from gancli_plugin_stylegan.config import StyleGANConfig
from gancli_plugin_stylegan.model import build
from stylegan_testkit import build_tiny, make_step, real_batch, tiny_config, train_tiny


def test_paper_defaults():
    c = StyleGANConfig()
    assert (c.z_dim, c.w_dim, c.mapping_layers, c.mapping_lr_multiplier, c.w_avg_beta) == (512, 512, 8, 0.01, 0.995)
    assert (c.lr, c.beta1, c.beta2, c.eps, c.r1_gamma, c.style_mixing_prob) == (0.001, 0.0, 0.99, 1e-8, 10.0, 0.9)
    assert StyleGANConfig.train_defaults["ema_half_life_kimg"] == 10.0
    gan = build(c, DataSpec(kind="image", channels=3, resolution=1024))
    G, D = gan.generator, gan.discriminator
    widths = [block.out_channels for block in G.synthesis.blocks]
    assert widths == [512, 512, 512, 512, 256, 128, 64, 32, 16]  # nf = min(8192 / 2^(log2 R − 1), 512)
    assert G.num_ws == 18
    assert D.output.dense.out_features == 512 and D.output.mbstd.group_size == 4


def test_logistic_loss_and_r1_terms():
    gan = build_tiny()
    G, D, objective = gan.generator, gan.discriminator, gan.objective
    real = real_batch()
    terms = objective.d_loss(make_step(G, D, real, seed=1))
    with torch.no_grad():
        real_out = D(real)
    x = real.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x).sum(), x)
    r1 = grad.square().flatten(1).sum(1).mean()
    assert terms["r1"].item() == pytest.approx(r1.item(), rel=1e-5)
    assert terms["score_real"].item() == pytest.approx(real_out.mean().item(), rel=1e-5)
    assert terms["loss"].item() == pytest.approx(terms["adv"].item() + 5.0 * r1.item(), rel=1e-5)  # γ/2 = 5
    fake_term = terms["adv"].item() - F.softplus(-real_out).mean().item()
    assert fake_term > 0  # softplus(D(G(z))) of the fakes
    g_terms = objective.g_loss(make_step(G, D, None, seed=2, batch_size=8, device="cpu"))
    assert set(g_terms) == {"loss"} and g_terms["loss"].requires_grad


def test_r1_under_bf16_autocast_equals_fp32():
    gan = build_tiny()
    G, D, objective = gan.generator, gan.discriminator, gan.objective
    real = real_batch()
    fp32 = objective.d_loss(make_step(G, D, real, seed=1))
    bf16 = objective.d_loss(make_step(G, D, real, seed=1, autocast=lambda: torch.autocast("cpu", torch.bfloat16)))
    assert bf16["r1"].dtype == torch.float32
    assert bf16["r1"].item() == pytest.approx(fp32["r1"].item(), rel=1e-6)  # D ran in fp32 for the penalty
    assert not torch.equal(bf16["score_fake"], fp32["score_fake"])  # bf16 really was in use elsewhere


def _relative_step(layer, before: torch.Tensor) -> float:
    """How far the effective weight moved, in units of its He scale gain/√fan_in."""
    fan_in = before[0].numel()
    moved = (layer.effective_weight.detach() - before).abs().mean().item()
    return moved / (layer.gain / math.sqrt(fan_in))


def test_mapping_lr_multiplier_reaches_its_effective_learning_rate():
    """One step of the family's Adam moves each stored weight by ≈ lr; the effective weight of a
    mapping layer then moves by lr · 0.01 of its scale, a synthesis layer's by lr · 1."""
    gan = build_tiny(lr=0.002)
    G, D = gan.generator, gan.discriminator
    opt_g, _ = gan.objective.optimizers(G, D)
    gan.objective.begin_step(Progress(0, 0), G, D)
    mapping_layer = G.mapping.layers[1]
    conv = G.synthesis.blocks[1].conv0
    assert isinstance(mapping_layer, EqualizedLinear) and isinstance(conv, EqualizedConv2d)
    before = {id(m): m.effective_weight.detach().clone() for m in (mapping_layer, conv)}
    bias_before = mapping_layer.effective_bias.detach().clone()
    g = torch.Generator().manual_seed(0)
    for p in G.parameters():
        p.grad = torch.randn(p.shape, generator=g)
    opt_g.step()
    assert opt_g.param_groups[0]["lr"] == 0.002 and opt_g.param_groups[0]["betas"] == (0.0, 0.99)
    assert _relative_step(mapping_layer, before[id(mapping_layer)]) == pytest.approx(0.002 * 0.01, rel=1e-3)
    assert _relative_step(conv, before[id(conv)]) == pytest.approx(0.002, rel=1e-3)
    # v1 G_mapping multiplies the bias by lrmul too: the effective bias moves by lr · 0.01
    bias_moved = (mapping_layer.effective_bias.detach() - bias_before).abs()
    assert torch.allclose(bias_moved, torch.full_like(bias_moved, 0.002 * 0.01), rtol=1e-3)


def test_lazy_r1_is_its_own_pass_with_corrected_adam_settings():
    gan = build_tiny(r1_interval=4, lr=0.001)
    objective = gan.objective
    phases = {p.name: p for p in objective.phases()}
    assert list(phases) == ["D", "Dreg", "G"] and phases["Dreg"].interval == 4 and phases["Dreg"].real == "last"
    opt_g, opt_d = objective.optimizers(gan.generator, gan.discriminator)
    objective.begin_step(Progress(10, 0), gan.generator, gan.discriminator)
    c = 4 / 5
    assert opt_d.param_groups[0]["lr"] == pytest.approx(0.001 * c)
    assert opt_d.param_groups[0]["betas"][1] == pytest.approx(0.99 ** c)
    assert opt_g.param_groups[0]["lr"] == pytest.approx(0.001)
    real = real_batch()
    s = make_step(gan.generator, gan.discriminator, real, seed=1)
    assert "r1" not in objective.d_loss(s)
    reg = objective.d_regularization(make_step(gan.generator, gan.discriminator, real, seed=1))
    assert reg["loss"].item() == pytest.approx(0.5 * 10.0 * 4 * reg["r1"].item())


def test_w_avg_moves_in_training_and_round_trips_through_the_checkpoint(tmp_path):
    result = train_tiny(tmp_path / "run", steps=3, checkpoint_every=1)
    ckpt = ckpt_io.read(result.last_checkpoint)
    g_avg, ema_avg = ckpt.tensors("G.")["mapping.w_avg"], ckpt.tensors("G_ema.")["mapping.w_avg"]
    first = ckpt_io.read(tmp_path / "run" / "checkpoints" / "step-000001.safetensors").tensors("G.")["mapping.w_avg"]
    assert first.abs().sum() > 0  # it starts at zero
    assert not torch.equal(first, g_avg)  # and keeps moving
    assert torch.equal(g_avg, ema_avg)  # the EMA copy's buffers are copied from G
    assert torch.equal(gancli.load(result.last_checkpoint, device="cpu").w_avg, ema_avg)
    raw = gancli.load(result.last_checkpoint, device="cpu", ema=False)
    assert torch.equal(raw.generator.w_avg, g_avg)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text()
    assert '"d/r1"' in lines and '"g/loss"' in lines


def test_user_errors_are_one_line():
    for resolution in (16, 48, 2048):
        with pytest.raises(GancliError, match="32 to 1024"):
            build(tiny_config(), DataSpec(kind="image", channels=1, resolution=resolution))
    with pytest.raises(GancliError, match="images"):
        build(tiny_config(), DataSpec(kind="points", dim=2))
    with pytest.raises(GancliError, match="start_resolution"):
        build(tiny_config(grow=True, start_resolution=64), DataSpec(kind="image", channels=1, resolution=32))
    gan = build_tiny()
    with pytest.raises(GancliError, match="divisible by 4"):
        gan.objective.d_loss(make_step(gan.generator, gan.discriminator, real_batch(n=6)))
    with pytest.raises(ValueError):
        StyleGANConfig(lr_per_resolution={100: 0.001})


@pytest.mark.parametrize("family,r1_interval", [("stylegan", 1), ("stylegan2", 16)])
def test_the_d_step_backpropagates_the_reals_before_the_fakes_with_the_gradients_of_one_backward(family, r1_interval):
    """The reals' term (and R1 on every step) is backpropagated before D sees the fakes; loss value and D's
    gradients are those of one backward of logistic loss + γ/2·R1 (stylegan2-ada's Dreal/Dgen split)."""
    def one_step(split: bool):
        gan = build_tiny(family=family, r1_interval=r1_interval, style_mixing_prob=0.0, r1_gamma=10.0)
        G, D = gan.generator, gan.discriminator
        calls = []

        def backward(part):
            calls.append(float(part.detach()))
            part.backward()

        step = make_step(G, D, real_batch(), seed=3, backward=backward if split else None)
        terms = gan.objective.d_loss(step)
        terms["loss"].backward()
        return terms, {n: p.grad.clone() for n, p in D.named_parameters() if p.grad is not None}, calls

    (whole, grads_whole, none), (split, grads_split, parts) = one_step(False), one_step(True)
    assert none == [] and len(parts) == 1  # one part backpropagated early: the reals' (+ R1)
    assert float(split["loss"].detach()) == pytest.approx(float(whole["loss"].detach()), rel=1e-6)
    expected = float(whole["adv"]) + (5.0 * float(whole["r1"]) if r1_interval == 1 else 0.0)
    assert float(whole["loss"].detach()) == pytest.approx(expected, rel=1e-6)
    assert grads_whole.keys() == grads_split.keys() and grads_whole
    for name, grad in grads_whole.items():
        torch.testing.assert_close(grads_split[name], grad, rtol=1e-5, atol=1e-7, msg=name)


@pytest.mark.parametrize("family", ["stylegan", "stylegan2"])
def test_the_g_step_reuses_the_d_steps_fakes_by_default_only_up_to_64_pixels(family):
    """Above 64×64 holding G's graph through the D step costs more memory than a plain loop; a setting decides."""
    assert build_tiny(family=family, resolution=32).objective.reuse_fake is True
    assert build_tiny(family=family, resolution=128).objective.reuse_fake is False
    assert build_tiny(family=family, resolution=128, fresh_g_latents=False).objective.reuse_fake is True
    assert build_tiny(family=family, resolution=32, fresh_g_latents=True).objective.reuse_fake is False


@pytest.mark.parametrize("family", ["stylegan", "stylegan2"])
def test_fresh_g_latents_draws_new_fakes_for_the_g_step_and_moves_w_avg_in_both_passes(family):
    """The references draw latents per loss; the default reuses the D step's fakes (one G forward a step)."""
    for fresh in (False, True):
        gan = build_tiny(family=family, fresh_g_latents=fresh, style_mixing_prob=0.0)
        G, D, objective = gan.generator, gan.discriminator, gan.objective
        assert objective.reuse_fake is (not fresh)
        G.train()
        step = make_step(G, D, real_batch(), seed=1)
        before = G.w_avg.clone()
        objective.d_loss(step)
        after_d = G.w_avg.clone()
        objective.g_loss(step)
        after_g = G.w_avg.clone()
        assert not torch.equal(before, after_d)  # the D pass's mapping call moves w_avg
        assert torch.equal(after_d, after_g) is (not fresh)  # only a fresh G pass moves it again
