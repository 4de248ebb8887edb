"""The hinge objective both families train with, their optimizer settings and the checkpointed u."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from gancli import checkpoint as ckpt_io
from gancli.data.spec import DataSpec
from gancli.errors import GancliError
from gancli.losses import get_loss
from gancli.nn import is_spectrally_normalized
from gancli.objective import AdversarialObjective, Step
from gancli_plugin_sngan.config import SAGANConfig, SNGANConfig
from gancli_plugin_sngan.model import build_sagan, build_sngan

TINY = {"z_dim": 8, "g_ch": 2, "d_ch": 4}


def test_the_core_hinge_loss_is_the_papers():
    """D: E[relu(1 − D(x))] + E[relu(1 + D(G(z)))]; G: −E[D(G(z))] (Miyato et al. 2018, eq. 16-17)."""
    hinge = get_loss("hinge")
    real = torch.tensor([2.0, 0.5, -1.0], requires_grad=True)
    fake = torch.tensor([-2.0, 0.0, 1.5], requires_grad=True)
    d = hinge.d_loss(real, fake)
    # real: relu(-1), relu(0.5), relu(2); fake: relu(-1), relu(1), relu(2.5)
    assert d.item() == pytest.approx((0 + 0.5 + 2) / 3 + (0 + 1 + 2.5) / 3)
    d.backward()
    # scores beyond the margin (real > 1, fake < −1) get no gradient; the others ∓1/n
    assert real.grad.tolist() == pytest.approx([0.0, -1 / 3, -1 / 3])
    assert fake.grad.tolist() == pytest.approx([0.0, 1 / 3, 1 / 3])
    g = hinge.g_loss(fake)
    assert g.item() == pytest.approx(-(-2.0 + 0.0 + 1.5) / 3)


class _ScoreD(nn.Module):
    """D(x) = the mean pixel: scores a test can compute by hand."""

    def forward(self, x, y=None, return_features=False):
        return x.flatten(1).mean(1)


class _ConstantG(nn.Module):
    z_dim, num_classes = 4, 0

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = nn.Parameter(torch.tensor(value))

    def forward(self, z, y=None):
        return self.value.expand(z.shape[0], 1, 2, 2)


def test_the_objective_trains_d_and_g_on_the_hinge_loss():
    objective = AdversarialObjective(loss="hinge")
    G, D = _ConstantG(-0.5), _ScoreD()
    real = torch.tensor([3.0, 0.25]).view(2, 1, 1, 1).expand(2, 1, 2, 2)
    step = Step(index=0, real=real, labels=None, G=G, D=D, z_dim=4, num_classes=0, repeats=5)
    d = objective.d_loss(step)
    assert d["loss"].item() == pytest.approx((0 + 0.75) / 2 + (1 - 0.5))
    g = objective.g_loss(Step(index=0, real=None, labels=None, G=G, D=D, z_dim=4, num_classes=0, phase="G",
                              batch_size=2, device="cpu"))
    assert g["loss"].item() == pytest.approx(0.5)


@pytest.mark.parametrize("build, config, lrs, n_critic", [
    (build_sngan, SNGANConfig, (2e-4, 2e-4), 5),  # SNGAN: α = 2e-4, n_dis = 5
    (build_sagan, SAGANConfig, (1e-4, 4e-4), 1),  # SAGAN: TTUR, 1:1
])
def test_the_papers_optimizers(build, config, lrs, n_critic):
    gan = build(config(**TINY), DataSpec(kind="image", channels=1, resolution=32))
    opt_g, opt_d = gan.objective.optimizers(gan.generator, gan.discriminator)
    assert isinstance(opt_g, torch.optim.Adam) and isinstance(opt_d, torch.optim.Adam)
    assert (opt_g.param_groups[0]["lr"], opt_d.param_groups[0]["lr"]) == lrs
    assert opt_g.param_groups[0]["betas"] == opt_d.param_groups[0]["betas"] == (0.0, 0.9)
    assert gan.objective.loss == "hinge" and gan.objective.d_steps(0) == n_critic


def test_learning_rates_decay_linearly_to_zero():
    gan = build_sngan(SNGANConfig(**TINY, lr_decay_steps=100), DataSpec(kind="image", channels=1, resolution=32))
    opt_g, opt_d = gan.objective.optimizers(gan.generator, gan.discriminator)
    from gancli.objective import Progress

    gan.objective.begin_step(Progress(25, 0), gan.generator, gan.discriminator)
    assert opt_g.param_groups[0]["lr"] == pytest.approx(1.5e-4) and opt_d.param_groups[0]["lr"] == pytest.approx(1.5e-4)
    gan.objective.begin_step(Progress(150, 0), gan.generator, gan.discriminator)
    assert opt_g.param_groups[0]["lr"] == 0.0


def test_sngan_decays_by_default_as_sngan_projection_and_sagan_does_not():
    """sngan_projection: LinearShift('alpha', (2e-4, 0), (0, 50000)); the SAGAN code keeps its rates."""
    gan = build_sngan(SNGANConfig(**TINY), DataSpec(kind="image", channels=1, resolution=32))
    opt_g, opt_d = gan.objective.optimizers(gan.generator, gan.discriminator)
    from gancli.objective import Progress

    gan.objective.begin_step(Progress(12500, 0), gan.generator, gan.discriminator)
    assert opt_g.param_groups[0]["lr"] == pytest.approx(1.5e-4) and opt_d.param_groups[0]["lr"] == pytest.approx(1.5e-4)
    gan.objective.begin_step(Progress(50000, 0), gan.generator, gan.discriminator)
    assert opt_g.param_groups[0]["lr"] == 0.0
    sagan = build_sagan(SAGANConfig(**TINY), DataSpec(kind="image", channels=1, resolution=32))
    opt_g, _ = sagan.objective.optimizers(sagan.generator, sagan.discriminator)
    sagan.objective.begin_step(Progress(40000, 0), sagan.generator, sagan.discriminator)
    assert opt_g.param_groups[0]["lr"] == pytest.approx(SAGANConfig().lr_g)


def test_a_delayed_decay_holds_the_rate_then_falls_linearly_to_zero_at_its_end():
    gan = build_sngan(SNGANConfig(**TINY, lr_decay_start=60, lr_decay_steps=100),
                      DataSpec(kind="image", channels=1, resolution=32))
    opt_g, _ = gan.objective.optimizers(gan.generator, gan.discriminator)
    from gancli.objective import Progress

    rates = {}
    for step in (0, 60, 80, 100, 120, 70):  # out of order: a resumed run lands on the same schedule
        gan.objective.begin_step(Progress(step, 0), gan.generator, gan.discriminator)
        rates[step] = opt_g.param_groups[0]["lr"]
    assert rates[0] == rates[60] == pytest.approx(2e-4)
    assert rates[70] == pytest.approx(1.5e-4) and rates[80] == pytest.approx(1e-4)
    assert rates[100] == rates[120] == 0.0


def test_a_decay_that_would_start_after_it_ends_is_refused():
    with pytest.raises(ValueError, match="lr_decay_start"):
        SNGANConfig(**TINY, lr_decay_start=100, lr_decay_steps=100)


def test_unlabelled_examples_in_conditional_training_are_one_clear_error():
    gan = build_sngan(SNGANConfig(**TINY), DataSpec(kind="image", channels=1, resolution=32, num_classes=3))
    real = torch.zeros(2, 1, 32, 32)
    step = Step(index=0, real=real, labels=torch.tensor([1, -1]), G=gan.generator, D=gan.discriminator,
                z_dim=8, num_classes=3, repeats=5)
    with pytest.raises(GancliError, match="drop data.labeled"):
        gan.objective.d_loss(step)


def _tiny_run(tmp_path: Path, out: str, steps: int, *, resume: bool = False):
    from gancli.config import RunConfig
    from gancli.data.images import TensorData
    from gancli.train.loop import train

    spec = DataSpec(kind="image", channels=1, resolution=32, num_classes=3, name="tiny")
    generator = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (16, 1, 32, 32), dtype=torch.uint8, generator=generator)
    data = TensorData(spec, images, torch.arange(16) % 3)
    config = SAGANConfig(**TINY)  # SN in G and D: both networks' vectors are checked
    run = RunConfig.model_validate({
        "family": "sagan", "data": {"source": "tiny"},
        "train": {"steps": steps, "batch_size": 8, "sample_every": 0, "checkpoint_every": steps, "log_every": 1,
                  "ema": True},
        "model": config.model_dump(mode="json"),
    })
    result = train(run, config, out=tmp_path / out, data=data, show_progress=False, resume=resume)
    return config, spec, result


def _vectors(tensors: dict) -> dict:
    return {k: v for k, v in tensors.items() if k.endswith(("._u", "._v"))}


@pytest.mark.slow
def test_u_survives_a_checkpoint_round_trip_and_resuming_continues_it_bit_for_bit(tmp_path: Path):
    _, _, straight = _tiny_run(tmp_path, "straight", 3)
    _tiny_run(tmp_path, "resumed", 2)
    config, spec, resumed = _tiny_run(tmp_path, "resumed", 3, resume=True)

    saved = ckpt_io.read(straight.last_checkpoint).tensors("")
    vectors = _vectors(saved)
    for net in ("G.", "D.", "G_ema."):
        originals = [k for k in saved if k.startswith(net) and k.endswith(".original")]
        assert originals and len([k for k in vectors if k.startswith(net)]) == 2 * len(originals), net

    # the power method ran: training moved every u of more than one entry away from its initial draw
    torch.manual_seed(0)
    initial = build_sagan(config, spec)
    initial_d = {f"D.{k}": v for k, v in initial.discriminator.state_dict().items()}
    moving = [k for k in vectors if k.startswith("D.") and k.endswith("._u") and vectors[k].numel() > 1]
    assert moving and all(not torch.equal(initial_d[k], vectors[k]) for k in moving)

    # resuming after step 2 restores u, v and continues the power method exactly
    continued = _vectors(ckpt_io.read(resumed.last_checkpoint).tensors(""))
    assert set(continued) == set(vectors)
    assert all(torch.equal(continued[k], vectors[k]) for k in vectors), [k for k in vectors if not torch.equal(continued[k], vectors[k])][:3]

    # loading the checkpoint into fresh networks gives back the trained vectors, so eval-mode
    # scores (σ̂ = uᵀWv from the stored u, v) are those of the trained D
    D = build_sagan(config, spec).discriminator
    D.load_state_dict(ckpt_io.read(straight.last_checkpoint).tensors("D."), strict=True)
    assert all(torch.equal(v, saved[f"D.{k}"]) for k, v in _vectors(D.state_dict()).items())
    D.eval()
    x, y = torch.rand(4, 1, 32, 32) * 2 - 1, torch.arange(4) % 3
    with torch.no_grad():
        first = D(x, y)
        assert torch.equal(D(x, y), first)  # eval mode leaves u, v alone
    assert all(torch.equal(v, saved[f"D.{k}"]) for k, v in _vectors(D.state_dict()).items())


@pytest.mark.parametrize("build, config", [(build_sngan, SNGANConfig), (build_sagan, SAGANConfig)])
def test_spectral_norm_switches_off_for_the_cost_comparison(build, config):
    """``g_spectral_norm``/``d_spectral_norm`` = false give the same networks without SN (sn_cost.py)."""
    spec = DataSpec(kind="image", channels=1, resolution=32, num_classes=3)
    torch.manual_seed(0)
    with_sn = build(config(**TINY), spec)
    torch.manual_seed(0)
    without = build(config(**TINY, g_spectral_norm=False, d_spectral_norm=False), spec)
    for a, b in ((with_sn.generator, without.generator), (with_sn.discriminator, without.discriminator)):
        assert not any(is_spectrally_normalized(m) for m in b.modules())
        assert sum(p.numel() for p in a.parameters()) == sum(p.numel() for p in b.parameters())
    assert any(is_spectrally_normalized(m) for m in with_sn.discriminator.modules())


def test_the_g_step_can_score_twice_the_d_batch_as_sngan_projection():
    import torch

    from gancli.data.spec import DataSpec
    from gancli.objective import Step
    from gancli_plugin_sngan.config import SNGANConfig
    from gancli_plugin_sngan.model import build_sngan

    spec = DataSpec(kind="image", channels=1, resolution=32)
    seen = []
    for factor in (1, 2):
        torch.manual_seed(0)
        gan = build_sngan(SNGANConfig.model_validate({"z_dim": 8, "g_ch": 2, "d_ch": 4, "g_batch_factor": factor}), spec)
        handle = gan.generator.register_forward_hook(lambda m, args, out: seen.append(out.shape[0]))
        s = Step(index=0, real=None, labels=None, G=gan.generator, D=gan.discriminator, z_dim=8, num_classes=0,
                 phase="G", batch_size=4, device=torch.device("cpu"))
        s.cache["fake"] = (torch.zeros(4, 1, 32, 32), None)  # the D step's fakes, which a larger G batch must not reuse
        loss = gan.objective.g_loss(s)["loss"]
        handle.remove()
        assert torch.isfinite(loss)
    assert seen == [8]  # factor 1 reused D's 4 fakes (no G forward); factor 2 generated 8 of its own
