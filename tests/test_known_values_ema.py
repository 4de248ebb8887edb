"""The generator's EMA (gancli.train.ema) with decays worked out by hand.

StyleGAN2's convention (stylegan2-ada-pytorch training_loop.py: ema_beta = 0.5 ** (batch_size / ema_nimg)):
β = 0.5 ** (batch / (half_life_kimg · 1000)), and G_ema ← β·G_ema + (1 − β)·G. The cases use β ≠ ½, where
β and 1 − β swapped would go unnoticed.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from gancli.train.ema import EMA


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(2))
        self.register_buffer("stat", torch.zeros(2))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))


def moved(net: Net, weight: float = 1.0, stat: float = 8.0, count: int = 7) -> Net:
    with torch.no_grad():
        net.weight.fill_(weight)
        net.stat.fill_(stat)
        net.count.fill_(count)
    return net


def test_beta_from_the_half_life_in_kimg():
    # 10 kimg, batch 32: 0.5 ** (32 / 10000) = exp(−0.0032 · ln 2) ≈ 0.9977843
    assert EMA(Net(), half_life_kimg=10.0).beta(32) == pytest.approx(0.9977843, rel=1e-7)
    # a batch of two half-lives: ¼; of half a half-life: 1/√2
    assert EMA(Net(), half_life_kimg=0.064).beta(128) == pytest.approx(0.25, rel=1e-12)
    assert EMA(Net(), half_life_kimg=0.064).beta(32) == pytest.approx(2 ** -0.5, rel=1e-12)
    # a fixed decay overrides the half-life, whatever the batch
    assert EMA(Net(), half_life_kimg=0.064, decay=0.9).beta(128) == 0.9


def test_one_and_two_updates_with_a_known_beta():
    G = Net()
    ema = EMA(G, half_life_kimg=0.064)  # batch 128: β = ¼
    ema.update(moved(G), step=0, batch_size=128)
    assert torch.allclose(ema.model.weight, torch.full((2,), 0.75))  # ¼·0 + ¾·1
    ema.update(moved(G, weight=3.0), step=1, batch_size=128)
    assert torch.allclose(ema.model.weight, torch.full((2,), 0.25 * 0.75 + 0.75 * 3.0))  # 2.4375
    assert torch.equal(G.weight, torch.full((2,), 3.0))  # G itself is left alone


def test_a_fixed_decay_moves_a_tenth_of_the_way():
    G = Net()
    ema = EMA(G, half_life_kimg=1.0, decay=0.9)
    ema.update(moved(G, weight=2.0), step=0, batch_size=64)
    assert torch.allclose(ema.model.weight, torch.full((2,), 0.2))  # 0.9·0 + 0.1·2


def test_buffers_are_copied_or_averaged():
    G = Net()
    copied = EMA(G, half_life_kimg=0.064)  # β = ¼ at batch 128
    averaged = EMA(G, half_life_kimg=0.064, buffers="average")
    moved(G, stat=8.0, count=7)
    copied.update(G, step=0, batch_size=128)
    averaged.update(G, step=0, batch_size=128)
    assert torch.equal(copied.model.stat, torch.full((2,), 8.0))
    assert torch.allclose(averaged.model.stat, torch.full((2,), 6.0))  # ¼·0 + ¾·8
    assert copied.model.count.item() == 7 and averaged.model.count.item() == 7  # integers are copied


def test_the_average_starts_at_its_start_step():
    G = Net()
    ema = EMA(G, half_life_kimg=0.064, start_step=2)
    ema.update(moved(G, weight=4.0), step=1, batch_size=128)  # before the start: a copy
    assert torch.equal(ema.model.weight, torch.full((2,), 4.0))
    ema.update(moved(G, weight=8.0), step=2, batch_size=128)  # from the start step on: the average
    assert torch.allclose(ema.model.weight, torch.full((2,), 0.25 * 4.0 + 0.75 * 8.0))  # 7


def test_rampup_caps_the_half_life_at_a_share_of_the_images_seen():
    """stylegan2-ada: ema_nimg = min(ema_kimg·1000, cur_nimg·ema_rampup), cur_nimg counted before the step."""
    ema = EMA(Net(), half_life_kimg=10.0, rampup=0.05)
    assert ema.beta(32, images_seen=0) == 0.0  # the first step copies G
    assert ema.beta(32, images_seen=1280) == pytest.approx(0.5 ** (32 / 64))  # 1280 · 0.05 = 64 images
    assert ema.beta(32, images_seen=400_000) == pytest.approx(0.5 ** (32 / 10_000))  # past 200k images: the half-life
    assert EMA(Net(), half_life_kimg=10.0).beta(32, images_seen=0) == pytest.approx(0.5 ** (32 / 10_000))

    net = Net()
    ema = EMA(net, half_life_kimg=10.0, rampup=0.05)
    ema.update(moved(net, weight=3.0), step=0, batch_size=32, images_seen=0)
    assert torch.equal(ema.model.weight, torch.full((2,), 3.0))
    ema.update(moved(net, weight=1.0), step=1, batch_size=32, images_seen=1280)  # β = 0.5 ** 0.5
    beta = 0.5 ** 0.5
    torch.testing.assert_close(ema.model.weight, torch.full((2,), beta * 3.0 + (1 - beta) * 1.0))


def test_the_trainer_passes_the_images_seen_before_each_step(tmp_path, tiny_npz):
    from safetensors.torch import load_file

    from gancli import config as cfg
    from gancli.train.loop import train

    run, family_config = cfg.resolve(
        "dcgan", flags={"data": {"source": str(tiny_npz), "resolution": 16},
                        "train": {"steps": 1, "batch_size": 8, "sample_every": 0, "ema": True, "ema_rampup": 0.05}},
        overrides=["ngf=4", "ndf=4", "z_dim=8"])
    result = train(run, family_config, out=tmp_path / "run", show_progress=False)
    tensors = load_file(str(result.last_checkpoint))
    weights = [k for k in tensors if k.startswith("G.") and not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert weights and all(torch.equal(tensors[k], tensors["G_ema." + k[2:]]) for k in weights)  # step 1 copies G
