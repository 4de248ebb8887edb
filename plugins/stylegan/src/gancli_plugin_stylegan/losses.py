"""The logistic loss with R1 that both StyleGAN families train with, as a mixin of their objectives.

NVlabs/stylegan ``training/loss.py`` (``G_logistic_nonsaturating``, ``D_logistic_simplegp``) and
stylegan2-ada-pytorch ``StyleGAN2Loss``: D minimizes softplus(D(G(z))) + softplus(−D(x)) with
γ/2·‖∇ₓD(x)‖² on the reals, every step (one full-precision forward of the reals for both terms)
or lazily as its own "Dreg" phase weighted by the interval; G minimizes softplus(−D(G(z))).
With one D step per G step and no accumulation the G step reuses the D step's fakes and their
graph (G has not changed in between), as the core's ``reuse_fake`` does; ``fresh_g_latents``
turns that off. A family says how it makes fakes (:meth:`generate`) and what D sees of the
reals (:meth:`reals`).
"""
from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from gancli.errors import GancliError
from gancli.losses import nonsaturating_g_loss
from gancli.objective import Step
from gancli.regularizers import r1_penalty, scored_r1_penalty


# Above this resolution the G step draws its own fakes unless fresh_g_latents says otherwise: holding G's graph
# through the D step cost 4.7 GB against the plain loop's 3.6 GB at 256², batch 4 (benchmarks/RESULTS.md),
# where at 32² reusing the fakes saves a G forward a step for ~0.1 GB.
REUSE_FAKES_UP_TO = 64


def reuses_fakes(fresh_g_latents, resolution: int) -> bool:
    """Whether the G step reuses the D step's fakes: ``fresh_g_latents`` when set, else by the resolution."""
    if fresh_g_latents is None:
        return resolution <= REUSE_FAKES_UP_TO
    return not fresh_g_latents


class LogisticR1Losses:
    """Methods for an ``AdversarialObjective`` dataclass with ``style_mixing_prob``, ``r1_gamma``,
    ``r1_interval``, ``lazy_r1`` and ``reuse_fake``."""

    family: ClassVar[str]
    _fake_key: ClassVar[str]

    def generate(self, s: Step) -> Tensor:
        raise NotImplementedError

    def reals(self, s: Step) -> Tensor:
        return s.real

    def minibatch_stddev(self, D):
        return getattr(D, "mbstd", None)

    def check_micro_batch(self, s: Step) -> None:
        mbstd = self.minibatch_stddev(s.D)
        if mbstd is None:
            return
        size = min(mbstd.group_size, s.batch_size)
        if s.batch_size % size:
            raise GancliError(
                f"{self.family}: the minibatch stddev layer groups {mbstd.group_size} images, but each process computes "
                f"{s.batch_size} at a time; use a batch (per process and micro-batch) divisible by "
                f"{mbstd.group_size}, or set mbstd_group_size"
            )

    def _fakes_for_d(self, s: Step) -> Tensor:
        if self.reuse_fake and s.repeats == 1 and s.accumulate == 1:
            fake = self.generate(s)  # keeps G's graph for the G step
            s.cache[self._fake_key] = fake
            return fake
        with torch.no_grad():
            return self.generate(s)

    def d_loss(self, s: Step) -> dict[str, Tensor]:
        self.check_micro_batch(s)
        fake = self._fakes_for_d(s)
        real = self.reals(s)
        r1_every_step = self.r1_gamma > 0 and not self.lazy_r1
        if r1_every_step:  # one full-precision forward of the reals for their loss term and R1 (v1, stylegan2-ada)
            r1, real_out = scored_r1_penalty(s.critic(None), real)
        else:
            real_out = s.discriminate(real)
        real_term = F.softplus(-real_out).mean()  # logistic_d_loss's two terms, taken one at a time
        real_part = real_term + 0.5 * self.r1_gamma * r1 if r1_every_step else real_term
        # backpropagated before D sees the fakes, so the reals' graph (R1's double backward at its largest)
        # and the fakes' graph are never held together, as stylegan2-ada's Dreal and Dgen phases
        kept = s.backward_now(real_part)
        fake_out = s.discriminate(fake.detach())
        fake_term = F.softplus(fake_out).mean()
        terms = {"adv": real_term.detach() + fake_term.detach(), "score_real": real_out.detach().mean(),
                 "score_fake": fake_out.detach().mean()}
        if r1_every_step:
            terms["r1"] = r1.detach()
        terms["loss"] = kept + fake_term
        return terms

    def d_regularization(self, s: Step) -> dict[str, Tensor]:
        """Lazy R1 on the reals D just saw, weighted by the interval."""
        r1 = r1_penalty(s.critic(None), self.reals(s))
        return {"r1": r1.detach(), "loss": 0.5 * self.r1_gamma * self.r1_interval * r1}

    def g_adversarial(self, s: Step) -> Tensor:
        """softplus(−D(G(z))) of the D step's fakes when they were kept, of new ones otherwise."""
        self.check_micro_batch(s)
        fake = s.cache.pop(self._fake_key, None)
        if fake is None:
            fake = self.generate(s)
        return nonsaturating_g_loss(s.discriminate(fake))
