"""The SNGAN/SAGAN objective: the core hinge-loss objective, with sngan_projection's larger G batch as an option.

sngan_projection's updater generates ``n_gen_samples`` (128) images for each G update and
``batchsize`` (64) for each D update (``updater.py``, ``configs/sn_cifar10.yml``): with
``g_batch_factor`` 2 the G step scores twice the D step's batch. 1 (the default) keeps both
equal, as StudioGAN and the SAGAN code do.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from gancli.losses import get_loss
from gancli.objective import AdversarialObjective, Step


@dataclass
class ResNetGANObjective(AdversarialObjective):
    g_batch_factor: int = 1

    def g_loss(self, s: Step) -> dict[str, Tensor]:
        if self.g_batch_factor == 1:
            return super().g_loss(s)
        s.cache.pop("fake", None)  # D's fakes are a D batch: the G step draws its own, larger one
        n = self.g_batch_factor * s.batch_size
        y = s.fake_labels(n)
        fake = s.generate(s.latents(n), y)
        return {"loss": get_loss(self.loss).g_loss(s.discriminate(fake, y))}
