"""Training-loop pieces: EMA maths, fp16 refusal, losses' definitions."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from gancli import losses
from gancli.train.ema import EMA


def test_ema_follows_the_half_life_and_the_decay():
    g = nn.Linear(3, 2)
    ema = EMA(g, half_life_kimg=0.064)  # 64 images
    before = [p.clone() for p in ema.model.parameters()]
    with torch.no_grad():
        for p in g.parameters():
            p.add_(1.0)
    ema.update(g, step=0, batch_size=64)  # one half-life: halfway there
    for old, new, target in zip(before, ema.model.parameters(), g.parameters()):
        assert torch.allclose(new, 0.5 * old + 0.5 * target)
    fixed = EMA(g, half_life_kimg=1.0, decay=0.9)
    assert fixed.beta(1000) == 0.9


def test_ema_copies_before_its_start_step():
    g = nn.Linear(2, 2)
    ema = EMA(g, half_life_kimg=100.0, start_step=5)
    with torch.no_grad():
        g.weight.fill_(3.0)
    ema.update(g, step=2, batch_size=8)
    assert torch.equal(ema.model.weight, g.weight)


def test_loss_definitions_on_known_logits():
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 1.0])
    sp = nn.functional.softplus
    assert torch.allclose(losses.logistic_d_loss(real, fake), sp(-real).mean() + sp(fake).mean())
    assert torch.allclose(losses.minimax_g_loss(fake), torch.log1p(-torch.sigmoid(fake)).mean())
    assert torch.allclose(losses.nonsaturating_g_loss(fake), -torch.log(torch.sigmoid(fake)).mean())
    assert torch.allclose(losses.hinge_d_loss(real, fake), torch.relu(1 - real).mean() + torch.relu(1 + fake).mean())
    assert torch.allclose(losses.wasserstein_d_loss(real, fake), fake.mean() - real.mean())
    smoothed = losses.logistic_d_loss(real, fake, real_target=0.9)
    expected = (0.9 * sp(-real) + 0.1 * sp(real)).mean() + sp(fake).mean()
    assert torch.allclose(smoothed, expected)


def test_fp16_on_cpu_is_refused_with_a_hint():
    from gancli.errors import GancliError
    from gancli.train.loop import make_accelerator

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(GancliError, match="bf16"):
        make_accelerator("fp16")


def test_bf16_training_runs_on_cpu(tiny_npz, tmp_path):
    """--precision bf16 runs G's and D's convolutions in bf16, and the losses stay close to fp32's."""
    import json

    from gancli import config as cfg
    from gancli.train.loop import train

    def run_with(precision: str):
        conv_dtypes: set = set()

        def record(module, inputs, output):  # every module's forward, G's and D's included
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)) and torch.is_tensor(output):
                conv_dtypes.add(output.dtype)

        run, fc = cfg.resolve(
            "dcgan",
            flags={"data": {"source": str(tiny_npz), "resolution": 16},
                   "train": {"steps": 2, "batch_size": 8, "precision": precision, "log_every": 1, "seed": 0}},
            overrides=["ngf=4", "ndf=4", "z_dim=8"],
        )
        hook = torch.nn.modules.module.register_module_forward_hook(record)
        try:
            result = train(run, fc, out=tmp_path / precision, show_progress=False)
        finally:
            hook.remove()
        assert result.step == 2
        lines = (tmp_path / precision / "metrics.jsonl").read_text().splitlines()
        return conv_dtypes, [json.loads(line) for line in lines]

    bf16_dtypes, bf16 = run_with("bf16")
    fp32_dtypes, fp32 = run_with("no")
    assert bf16_dtypes == {torch.bfloat16}  # every conv of G and D ran under bf16 autocast
    assert fp32_dtypes == {torch.float32}  # and the hook does see the precision
    assert [m["step"] for m in bf16] == [m["step"] for m in fp32] == [1, 2]
    # Same seed, so the same weights, batches and latents: at the first step the runs differ only by rounding.
    # bf16 keeps 8 significant bits: neighbouring values lie 2^-8 ≈ 0.4% apart, so each rounded op errs by up
    # to 0.2%. D's logits pass ~6 rounded ops (3 convs, batch norm, activations): ~1.2% if every error added
    # up, much less as they partly cancel. The losses, taken in fp32 (softplus of the logits), move relatively
    # less than logits of magnitude below 1 do, as at initialisation. 1% bounds that (observed: 2–3e-4);
    # another seed moves one of the two losses by 1–12%.
    for key in ("d/loss", "g/loss"):
        assert bf16[0][key] == pytest.approx(fp32[0][key], rel=0.01), key
    assert (bf16[0]["d/loss"], bf16[0]["g/loss"]) != (fp32[0]["d/loss"], fp32[0]["g/loss"])  # not the fp32 run


def test_ema_following_a_grown_generator_keeps_averages_and_takes_gs_buffers():
    """After growth the EMA copy keeps its weight averages but takes G's copied buffers as they are
    now: a fade-in α just reset to 0 for the new block must not stay at the old copy's 1."""
    import torch
    from torch import nn

    from gancli.train.ema import EMA

    class Growing(nn.Module):
        def __init__(self):
            super().__init__()
            self.old = nn.Linear(2, 2)
            self.register_buffer("alpha", torch.ones(()))

        def grow(self):
            self.new = nn.Linear(2, 2)
            self.alpha.zero_()

    torch.manual_seed(0)
    G = Growing()
    ema = EMA(G, half_life_kimg=1.0, decay=0.5)
    with torch.no_grad():
        G.old.weight.add_(1.0)
    ema.update(G, step=1, batch_size=1)
    averaged = ema.model.old.weight.clone()
    assert not torch.equal(averaged, G.old.weight)
    G.grow()
    assert ema.follow(G)
    assert torch.equal(ema.model.old.weight, averaged)  # the average of the layer it had
    assert torch.equal(ema.model.new.weight, G.new.weight)  # new layers start from G
    assert ema.model.alpha.item() == 0.0  # copied buffers from G as it is now
