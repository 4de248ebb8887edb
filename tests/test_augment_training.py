"""train.augment through the trainer: what D sees, ADA's p in the metrics and the resume state, and the
counter-based draws that make micro-batches and processes augment as one whole batch."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from gancli import checkpoint as ckpt_io
from gancli import config as cfg
from gancli.errors import GancliError
from gancli.objective import Step
from gancli.train.augmentation import Augmentation
from gancli.train.loop import train

TINY = ["ngf=4", "ndf=4", "z_dim=8"]


class Recorder(nn.Module):
    """A critic that remembers what it was shown and scores every image +1."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x, y=None):
        self.seen.append(x.detach().clone())
        return x.flatten(1).sum(dim=1) * 0 + 1.0


def _step(real, augment=None, observe=None, **kwargs):
    return Step(index=3, real=real, labels=None, G=nn.Identity(), D=Recorder(), z_dim=2, num_classes=0,
                augment=augment, observe_real=observe, **kwargs)


def test_every_image_d_sees_is_augmented_and_only_reals_feed_the_statistic():
    real = torch.rand(4, 1, 8, 8) * 2 - 1
    fake = torch.rand(4, 1, 8, 8) * 2 - 1
    observed = []
    s = _step(real, augment=lambda x, step: -x, observe=observed.append)
    s.discriminate(real)
    s.discriminate(fake)
    s.critic()(real.detach().float().requires_grad_(True))  # R1's copy of the reals shares their storage
    seen = s.D.seen
    assert torch.equal(seen[0], -real) and torch.equal(seen[1], -fake) and torch.equal(seen[2], -real)
    assert len(observed) == 2 and all(torch.equal(o, torch.ones(4)) for o in observed)


def test_r1_through_the_augmentation_differentiates_the_images_before_it():
    real = torch.rand(4, 1, 8, 8)
    s = _step(real, augment=lambda x, step: 3 * x)
    s.D = lambda x, y=None: x.flatten(1).sum(dim=1)
    x = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(s.critic()(x).sum(), x)
    assert torch.allclose(grad, torch.full_like(grad, 3.0))  # d(sum 3x)/dx: the chain through the augmentation


@pytest.mark.parametrize("kind", ["diffaugment", "ada"])
def test_micro_batches_augment_as_the_whole_batch(kind):
    """The Step's counter-based draws: two micro-batches of 4 get exactly the augmentation of the batch of 8."""
    settings = cfg.TrainConfig(augment=kind, ada_p=0.8)
    augmentation = Augmentation.for_run(settings)
    batch = torch.rand(8, 3, 16, 16) * 2 - 1
    whole = augmentation(batch, _step(batch))
    halves = [augmentation(part, _step(part, micro=k, accumulate=2)) for k, part in enumerate(batch.chunk(2))]
    assert not torch.equal(whole, batch)
    torch.testing.assert_close(torch.cat(halves), whole, rtol=1e-5, atol=1e-5)


def _images(path, n=32):
    rng = np.random.default_rng(0)
    np.savez(path, images=rng.integers(0, 256, size=(n, 16, 16), dtype=np.uint8))
    return path


def _train(tmp_path, out, steps, *, resume=False, augment="ada", extra=None):
    flags = {"data": {"source": str(_images(tmp_path / "tiny.npz")), "resolution": 16},
             "train": {"steps": steps, "batch_size": 8, "log_every": 1, "sample_every": 0, "checkpoint_every": 3,
                       "augment": augment, "ada_interval": 1, "ada_kimg": 0.05, "ada_p": 0.5, **(extra or {})}}
    base = None
    if resume:
        from gancli.train.resume import resume_tree

        base = resume_tree(out / "checkpoints" / "last.safetensors")
    run, family_config = cfg.resolve("dcgan", base=base, flags=flags, overrides=TINY)
    return train(run, family_config, out=out, resume=resume, show_progress=False)


def test_ada_p_is_logged_saved_and_resumed_exactly(tmp_path):
    straight = _train(tmp_path, tmp_path / "straight", 6)
    lines = [json.loads(line) for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    ps = [line["augment/p"] for line in lines]
    # every step moves p by batch · interval / (kimg · 1000) = 8 / 50 = 0.16 up or down from 0.5 (or stops at 0)
    assert all(abs(b - a) == pytest.approx(0.16) or b == 0.0 for a, b in zip([0.5] + ps, ps))
    _train(tmp_path, tmp_path / "resumed", 3)
    resumed = _train(tmp_path, tmp_path / "resumed", 6, resume=True)
    a, b = ckpt_io.read(straight.last_checkpoint).tensors(""), ckpt_io.read(resumed.last_checkpoint).tensors("")
    assert float(a["state.rank.0.augment.p"]) == pytest.approx(ps[-1])
    assert set(a) == set(b)
    for name, value in a.items():
        assert torch.equal(b[name], value), name


def test_an_unknown_policy_is_one_clear_error():
    with pytest.raises(GancliError, match="ADA's pipeline is one of blit, geom, color, bg, bgc"):
        Augmentation.for_run(cfg.TrainConfig(augment="ada", augment_policy="bc"))
    with pytest.raises(GancliError, match="DiffAugment's policy is a comma-separated choice"):
        Augmentation.for_run(cfg.TrainConfig(augment="diffaugment", augment_policy="color,blur"))


def test_augment_on_points_is_one_clear_error(tmp_path):
    run, family_config = cfg.resolve("wgan-gp", flags={"data": {"source": "ring8"},
                                                       "train": {"steps": 1, "augment": "diffaugment"}},
                                     overrides=["width=8", "z_dim=2"])
    with pytest.raises(GancliError, match="--augment diffaugment transforms images; ring8 holds points"):
        train(run, family_config, out=tmp_path / "run", show_progress=False)


def test_ada_geometry_on_a_torch_without_grid_samples_second_derivative_is_one_clear_line(monkeypatch):
    from gancli.train import augmentation

    monkeypatch.setattr(augmentation, "grid_sample_twice_differentiable", lambda: False)
    ada = Augmentation.for_run(cfg.TrainConfig(augment="ada", ada_p=0.5))
    images = torch.rand(4, 1, 8, 8)
    s = _step(images)
    assert ada(images, s).shape == images.shape  # the reals and fakes of a loss: fine without it
    with pytest.raises(GancliError, match="needs grid_sample's second derivative"):
        ada(images.clone().requires_grad_(True), s)  # a penalty's input
    colour_only = Augmentation.for_run(cfg.TrainConfig(augment="ada", augment_policy="color", ada_p=0.5))
    assert colour_only(images.clone().requires_grad_(True), s).shape == images.shape
