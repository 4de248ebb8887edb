"""BigGAN's objective and sampling-time pieces: defaults, orthogonal regularization, class mixtures,
gradient accumulation, standing statistics."""
from __future__ import annotations

import json
import math
import tomllib
from importlib.resources import files

import pytest
import torch
from torch import nn

import gancli
from gancli import config as cfg
from gancli.data.images import TensorData
from gancli.data.spec import DataSpec
from gancli.nn import batch_norm_layers, standing_statistics
from gancli.objective import Step
from gancli.train.loop import train
from gancli_plugin_biggan.config import BigGANConfig
from gancli_plugin_biggan.objective import generator_orthogonal_penalty

from _biggan_testkit import NUM_CLASSES, TINY, tiny_gan


def test_paper_defaults():
    config = BigGANConfig()
    assert (config.lr_g, config.lr_d, config.beta1, config.beta2, config.adam_eps) == (5e-5, 2e-4, 0.0, 0.999, 1e-6)
    assert (config.n_critic, config.ortho_beta, config.shared_dim, config.conditional) == (2, 1e-4, 128, True)
    assert BigGANConfig.train_defaults == {"batch_size": 2048, "ema": True, "ema_decay": 0.9999, "ema_start_step": 20_000}
    gan = tiny_gan()
    objective = gan.objective
    assert objective.loss == "hinge" and objective.n_critic == 2 and not objective.reuse_fake
    assert objective.sync_batchnorm and objective.ema_buffers == "copy"  # averaged SN u, v would not be unit vectors
    phases = objective.phases()
    assert [p.name for p in phases] == ["D", "G"] and phases[0].times(0) == 2
    opt_g, opt_d = objective.optimizers(gan.generator, gan.discriminator)
    assert opt_g.param_groups[0]["lr"] == 5e-5 and opt_d.param_groups[0]["lr"] == 2e-4
    assert opt_g.param_groups[0]["betas"] == (0.0, 0.999) and opt_g.param_groups[0]["eps"] == 1e-6


def test_a_delayed_linear_decay_reaches_the_objective_and_may_change_on_resume():
    from gancli.objective import Progress

    gan = tiny_gan(lr_g=1e-4, lr_decay_start=10, lr_decay_steps=20)
    opt_g, opt_d = gan.objective.optimizers(gan.generator, gan.discriminator)
    gan.objective.begin_step(Progress(15, 0), gan.generator, gan.discriminator)
    assert opt_g.param_groups[0]["lr"] == pytest.approx(0.5e-4)
    assert {"lr_decay_start", "lr_decay_steps"} <= BigGANConfig.resume_may_change
    with pytest.raises(ValueError, match="lr_decay_start"):
        BigGANConfig(lr_decay_start=20, lr_decay_steps=20)


def _only_weight(G: nn.Module, keep: torch.Tensor) -> None:
    """Zero every ≥2-D weight of G except ``keep`` and the shared embedding."""
    with torch.no_grad():
        for p in G.parameters():
            if p.dim() >= 2 and p is not keep and p is not G.shared.weight:
                p.zero_()


def test_orthogonal_penalty_through_the_family_generator():
    G = tiny_gan().generator
    W = G.blocks[1].conv1.parametrizations.weight.original  # (8, 8·3·3): rows can be orthogonal
    _only_weight(G, W)
    with torch.no_grad():
        rows, cols = W.shape[0], W[0].numel()
        q, _ = torch.linalg.qr(torch.randn(cols, rows))
        # orthogonal rows of different lengths: only the off-diagonal of W Wᵀ is penalized
        W.copy_((q.t() * torch.linspace(0.5, 3.0, rows)[:, None]).view_as(W))
    assert generator_orthogonal_penalty(G).item() == pytest.approx(0.0, abs=1e-8)
    with torch.no_grad():
        G.shared.weight.copy_(torch.ones_like(G.shared.weight))  # far from orthogonal, but excluded
    assert generator_orthogonal_penalty(G).item() == pytest.approx(0.0, abs=1e-8)
    with torch.no_grad():
        W.view(W.shape[0], -1)[1] += W.view(W.shape[0], -1)[0]  # two rows no longer orthogonal
    rows = W.detach().reshape(W.shape[0], -1)
    gram = rows @ rows.t()
    expected = (gram - torch.diag(torch.diagonal(gram))).square().sum()
    assert generator_orthogonal_penalty(G).item() == pytest.approx(expected.item(), rel=1e-5) and expected > 0


def test_g_loss_adds_half_beta_penalty_whose_gradient_is_biggan_pytorchs_ortho():
    gan = tiny_gan(ortho_beta=1e-2)
    G, D, objective = gan.generator, gan.discriminator, gan.objective
    step = Step(index=0, real=None, labels=None, G=G, D=D, z_dim=G.z_dim, num_classes=NUM_CLASSES, phase="G",
                phase_index=1, batch_size=4, device=torch.device("cpu"))
    terms = objective.g_loss(step)
    assert set(terms) >= {"loss", "adv", "ortho"}
    assert terms["loss"].item() == pytest.approx(terms["adv"].item() + 0.5e-2 * terms["ortho"].item(), rel=1e-6)
    # gradient of β/2·Σ‖WWᵀ⊙(1−I)‖² = BigGAN-PyTorch utils.ortho: 2β·((WWᵀ)⊙(1−I))·W, per weight
    G.zero_grad()
    (0.5e-2 * generator_orthogonal_penalty(G)).backward()
    for p in G.parameters():
        if p.dim() < 2 or p is G.shared.weight:
            assert p.grad is None or not p.grad.any()
            continue
        w = p.detach().view(p.shape[0], -1)
        reference = 2e-2 * ((w @ w.t()) * (1.0 - torch.eye(w.shape[0]))) @ w
        torch.testing.assert_close(p.grad.view_as(reference), reference, rtol=1e-4, atol=1e-7)


def test_a_one_hot_mixture_is_exactly_that_class_and_mixtures_blend_embeddings(arch):
    G = tiny_gan(arch).generator.eval()
    assert G.accepts_class_mixtures
    z = torch.randn(NUM_CLASSES, G.z_dim)
    labels = torch.arange(NUM_CLASSES)
    with torch.no_grad():
        by_index = G(z, labels)
        by_weights = G(z, torch.eye(NUM_CLASSES))
        mixture = torch.zeros(1, NUM_CLASSES)
        mixture[0, 3] = mixture[0, 1] = 0.5
        blended = G.class_embedding(mixture, 1)
        mixed = G(z[:1], mixture)
    assert torch.equal(by_index, by_weights)
    torch.testing.assert_close(blended[0], 0.5 * (G.shared.weight[3] + G.shared.weight[1]))
    with torch.no_grad():
        pure = [G(z[:1], torch.tensor([k])) for k in (1, 3)]
    assert not any(torch.allclose(mixed, p) for p in pure)
    with pytest.raises(ValueError, match="5 columns"):
        G(z[:1], torch.ones(1, 3))


def _labelled_data(n: int = 16) -> TensorData:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 1, 32, 32), generator=g, dtype=torch.uint8)
    spec = DataSpec(kind="image", channels=1, resolution=32, num_classes=NUM_CLASSES, name="tiny")
    return TensorData(spec, images, torch.arange(n) % NUM_CLASSES)


def test_accumulation_over_two_micro_batches_trains_and_logs_the_ortho_term(tmp_path):
    # check_family runs accumulation for both architectures; this adds the logged terms and a reload
    run, family_config = cfg.resolve(
        "biggan",
        flags={"data": {"source": "tiny"}, "train": {"steps": 2, "batch_size": 8, "accumulate": 2, "log_every": 1,
                                                     "ema": True, "ema_start_step": 0, "ema_decay": 0.9,
                                                     "sample_grid": 4, "channels_last": False}},
        overrides=[f"{k}={v}" for k, v in TINY.items()],
    )
    result = train(run, family_config, out=tmp_path / "run", data=_labelled_data(), show_progress=False)
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert result.step == 2 and len(lines) == 2
    assert all(math.isfinite(v) for line in lines for v in line.values() if isinstance(v, float))
    assert {"g/ortho", "g/adv", "d/wdist"} <= set(lines[-1]) and lines[-1]["g/ortho"] > 0
    pipe = gancli.load(result.last_checkpoint, device="cpu")
    assert pipe.sample(4, seed=0, class_=2).shape == (4, 1, 32, 32)


def test_sample_grids_and_checkpoints_along_the_way_do_not_change_the_trained_weights(tmp_path):
    # the EMA copy's standing statistics and SN refits run at every grid and checkpoint; training must not see them
    from safetensors.torch import load_file

    def weights(out: str, every: int) -> dict:
        run, family_config = cfg.resolve(
            "biggan",
            flags={"data": {"source": "tiny"}, "train": {"steps": 4, "batch_size": 8, "log_every": 1, "ema": True,
                                                         "ema_start_step": 1, "ema_decay": 0.9, "sample_grid": 4,
                                                         "sample_every": every, "checkpoint_every": every or 4,
                                                         "channels_last": False}},
            overrides=[f"{k}={v}" for k, v in TINY.items()],
        )
        result = train(run, family_config, out=tmp_path / out, data=_labelled_data(), show_progress=False)
        return load_file(str(result.last_checkpoint))

    quiet, busy = weights("quiet", 0), weights("busy", 1)
    assert quiet.keys() == busy.keys()
    assert [k for k in quiet if not torch.equal(quiet[k], busy[k])] == []


def test_standing_statistics_change_the_running_statistics_and_nothing_else(arch):
    G = tiny_gan(arch).generator.eval()
    before = {k: v.clone() for k, v in G.state_dict().items()}
    z, y = torch.randn(4, G.z_dim), torch.arange(4)
    with torch.no_grad():
        x_before = G(z, y)
    layers = standing_statistics(G, batches=3, batch_size=8)
    assert layers == len(batch_norm_layers(G)) > 0
    bn_buffers = {f"{name}.{buffer}" for name, m in G.named_modules() if m in batch_norm_layers(G)
                  for buffer in ("running_mean", "running_var", "num_batches_tracked")}
    after = G.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and changed <= bn_buffers  # weights, SN u/v, attention γ untouched
    assert any(k.endswith("running_var") for k in changed)
    assert not G.training and all(not m.training for m in G.modules())
    with torch.no_grad():
        assert not torch.allclose(G(z, y), x_before)


def test_recipes_are_shipped_and_validate():
    folder = files("gancli_plugin_biggan") / "recipes"
    names = sorted(item.name for item in folder.iterdir() if item.name.endswith(".toml"))
    assert names == ["biggan-cifar10.toml", "biggan-fashion-mnist.toml"]
    for name in names:
        recipe = tomllib.loads((folder / name).read_text())
        assert recipe["family"] == "biggan" and recipe["description"]
        BigGANConfig.model_validate(recipe["model"])
    assert "GPU" in tomllib.loads((folder / "biggan-cifar10.toml").read_text())["description"]


def test_before_sampling_refits_the_ema_copys_sigma_and_batchnorm_statistics_only_for_the_ema_copy():
    from gancli.nn import spectral_norm_estimate

    gan = tiny_gan()
    G, objective = gan.generator.eval(), gan.objective
    conv = G.blocks[0].conv1
    with torch.no_grad():  # as an average of past weights would: W moves, u and v stay G's
        conv.parametrizations.weight.original.add_(0.5 * torch.randn_like(conv.parametrizations.weight.original))
    true_sigma = torch.linalg.matrix_norm(conv.parametrizations.weight.original.flatten(1), ord=2)
    before = {k: v.clone() for k, v in G.state_dict().items()}
    objective.before_sampling(G, is_ema=False)
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())  # the live G is left alone
    stale = spectral_norm_estimate(conv)
    objective.before_sampling(G, is_ema=True)
    assert abs(spectral_norm_estimate(conv) - true_sigma) < abs(stale - true_sigma)
    assert spectral_norm_estimate(conv).item() == pytest.approx(true_sigma.item(), rel=0.03)  # 15 power steps
    changed = {k for k, v in G.state_dict().items() if not torch.equal(before[k], v)}
    assert any(k.endswith("running_mean") for k in changed)
    assert all(k.endswith(("running_mean", "running_var", "num_batches_tracked", "_u", "_v")) for k in changed)


def test_the_standing_batch_is_g_s_batch_and_a_resumed_run_keeps_it_from_its_first_pass(tmp_path):
    from gancli import checkpoint as ckpt_io
    from gancli.train.resume import resume_tree

    def run_to(steps: int, *, resume: bool = False):
        base = resume_tree(tmp_path / "run" / "checkpoints" / "last.safetensors") if resume else None
        run, family_config = cfg.resolve(
            "biggan", base=base,
            flags={"data": {"source": "tiny"}, "train": {"steps": steps, "batch_size": 8, "sample_every": 0,
                                                         "checkpoint_every": 0, "channels_last": False}},
            overrides=[f"{k}={v}" for k, v in TINY.items()],
        )
        return train(run, family_config, out=tmp_path / "run", data=_labelled_data(), show_progress=False, resume=resume)

    first = ckpt_io.read(run_to(2).last_checkpoint)
    assert int(first.tensors("")["state.rank.0.objective.standing_batch_size"]) == 8  # not the default 64
    objective = tiny_gan("biggan").objective
    assert objective.standing_batch_size == 64
    objective.load_state_tensors({"standing_batch_size": torch.tensor(8)})
    assert objective.standing_batch_size == 8
    resumed = ckpt_io.read(run_to(3, resume=True).last_checkpoint)
    assert int(resumed.tensors("")["state.rank.0.objective.standing_batch_size"]) == 8
