"""The configurable adversarial objective most families use: one loss of gancli.losses plus regularizers."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from gancli import losses, regularizers
from gancli.errors import GancliError
from gancli.objective.base import Objective
from gancli.objective.optimizers import OptimizerSettings, lazy_regularization, linear_lr_decay, make_optimizer
from gancli.objective.phases import Network, Phase
from gancli.objective.step import Progress, Step


@dataclass
class AdversarialObjective(Objective):
    """One adversarial loss (gancli.losses) plus optional regularizers.

    Phases: "D" (``d_steps(step)`` times, each on a fresh real batch), "Dreg" when R1 is
    lazy (``r1_interval`` > 1: its own pass every ``r1_interval`` steps on D's last real
    batch, weighted by the interval, with D's Adam settings corrected for lazy
    regularization), and "G".

    ``reuse_fake``: with one D step per G step and no accumulation, the G step
    back-propagates through the same G(z) that the D step scored (G is unchanged in
    between), which saves a generator forward pass per iteration, as the PyTorch DCGAN
    example does.

    Gradient penalties (``gradient_penalty``, ``r1_gamma``) run D in full precision under
    mixed precision. For a conditional model with the gradient penalty on, the fakes D
    sees are generated with the real batch's labels, so that the interpolates between a
    real image and a fake share their class (igul222/improved_wgan_training's conditional
    CIFAR-10 script does the same).

    * ``real_label`` < 1: one-sided label smoothing (fake targets stay 0).
    * ``lr_decay_steps`` n > 0: both learning rates fall linearly to 0 at G step n, starting from
      step ``lr_decay_start`` (default 0: over the whole run).

    Hooks for subclasses that add terms of their own (the gan family's Improved-GAN objective):
    ``labels_condition_d``, ``g_phase_real``, ``adversarial_logit(out)``,
    ``d_adversarial_loss(s, adv, real_out, terms)``, ``g_adversarial_loss(s, fake, y, terms)`` and
    ``extra_penalty(network, s, total, terms)``.
    """

    loss: str = "nonsaturating"
    optimizer: OptimizerSettings = field(default_factory=OptimizerSettings)
    n_critic: int = 1
    real_label: float = 1.0
    gradient_penalty: float = 0.0
    r1_gamma: float = 0.0
    r1_interval: int = 1
    drift: float = 0.0
    clip_weights: Optional[float] = None
    reuse_fake: bool = True
    lr_decay_steps: int = 0
    lr_decay_start: int = 0

    # (class attributes, not settings) D is conditioned on the real batch's labels: a subclass whose D
    # takes them as targets says False; the real batch the G phase draws ("new" for a G loss on reals)
    labels_condition_d = True
    g_phase_real = "none"

    def __post_init__(self) -> None:
        self._loss = losses.get_loss(self.loss)
        if self.lr_decay_steps and self.lr_decay_start >= self.lr_decay_steps:
            raise ValueError(f"lr_decay_start ({self.lr_decay_start}) must be below lr_decay_steps ({self.lr_decay_steps})")
        if self.real_label != 1.0 and not self._loss.supports_label_smoothing:
            raise ValueError(f"label smoothing does not apply to the {self.loss} loss")
        self._optimizers: tuple = ()

    @property
    def lazy_r1(self) -> bool:
        return self.r1_gamma > 0 and self.r1_interval > 1

    def phases(self) -> Sequence[Phase]:
        phases = [Phase("D", "D", self.d_loss, repeats=self.d_steps, after_step=self.after_d_step)]
        if self.lazy_r1:
            phases.append(Phase("Dreg", "D", self.d_regularization, interval=self.r1_interval, real="last"))
        phases.append(Phase("G", "G", self.g_loss, real=self.g_phase_real, after_step=self.after_g_step))
        return phases

    def optimizers(self, G, D):
        s = self.optimizer
        lr_d, betas_d = lazy_regularization(s.lr_d, s.betas, self.r1_interval if self.lazy_r1 else 1)
        self._optimizers = (make_optimizer(G.parameters(), s, s.lr_g), make_optimizer(D.parameters(), s, lr_d, betas_d))
        return self._optimizers

    def begin_step(self, progress: Progress, G: nn.Module, D: nn.Module) -> None:
        if self.lr_decay_steps:
            linear_lr_decay(self._optimizers, progress.step, self.lr_decay_steps, self.lr_decay_start)

    # ------------------------------------------------------------ hooks for subclasses

    def adversarial_logit(self, out: Tensor) -> Tensor:
        """The real-vs-fake logit of D's output ``out`` (the adversarial loss's input): ``out`` itself."""
        return out

    def d_adversarial_loss(self, s: Step, adv: Tensor, real_out: Tensor, terms: dict[str, Tensor]) -> Tensor:
        """D's loss before the regularizers, from the adversarial term ``adv``: ``adv`` itself.
        A subclass may add terms (logging them in ``terms``)."""
        return adv

    def g_adversarial_loss(self, s: Step, fake: Tensor, y: Optional[Tensor], terms: dict[str, Tensor]) -> Tensor:
        """G's loss on the generated ``fake`` (of classes ``y``) before any penalty: the adversarial G loss."""
        return self._loss.g_loss(self.adversarial_logit(s.discriminate(fake, y)))

    def extra_penalty(self, network: Network, s: Step, total: Tensor, terms: dict[str, Tensor]) -> Tensor:
        """The last word on ``network``'s loss ``total``: a subclass's own penalty (logged in ``terms``)."""
        return total

    # ------------------------------------------------------------ losses

    def _conditioning(self, s: Step) -> Optional[Tensor]:
        """The labels D is conditioned on (none when ``labels_condition_d`` is False)."""
        if not self.labels_condition_d:
            return None
        if s.num_classes > 0 and s.labels is not None and bool((s.labels < 0).any()):
            # data.labeled leaves examples unlabelled (-1); a class-conditional D cannot score them
            raise GancliError(
                "a class-conditional model needs every real example labelled, but data.labeled left some "
                "unlabelled; drop data.labeled or train unconditionally with --set conditional=false"
            )
        return s.labels

    def _fake_labels_for_d(self, s: Step) -> Optional[Tensor]:
        if self.gradient_penalty > 0 and s.num_classes > 0 and s.labels is not None and self.labels_condition_d:
            return s.labels  # interpolates between a real image and a fake of the same class
        return s.fake_labels()

    def _fake_for_d(self, s: Step) -> tuple[Tensor, Optional[Tensor]]:
        z, y = s.latents(), self._fake_labels_for_d(s)
        if self.reuse_fake and s.repeats == 1 and s.accumulate == 1:
            fake = s.generate(z, y)  # keeps G's graph for the G step
            s.cache["fake"] = (fake, y)
        else:
            with torch.no_grad():
                fake = s.generate(z, y)
        return fake, y

    def d_loss(self, s: Step) -> dict[str, Tensor]:
        fake, y_fake = self._fake_for_d(s)
        y_real = self._conditioning(s)
        r1_every_step = self.r1_gamma > 0 and not self.lazy_r1
        if r1_every_step:  # one full-precision forward of the reals for their loss term and R1
            r1, real_out = regularizers.scored_r1_penalty(s.critic(y_real), s.real)
        else:
            real_out = s.discriminate(s.real, y_real)
        fake_out = s.discriminate(fake.detach(), y_fake)
        adv = self._loss.d_loss(self.adversarial_logit(real_out), self.adversarial_logit(fake_out), self.real_label)
        terms: dict[str, Tensor] = {"adv": adv.detach()}
        total = self.d_adversarial_loss(s, adv, real_out, terms)
        if self.loss in ("wasserstein", "hinge"):
            terms["wdist"] = losses.wasserstein_estimate(real_out, fake_out)
        if self.gradient_penalty > 0:
            eps = s.rand(*([1] * (s.real.dim() - 1)))
            gp = regularizers.gradient_penalty(s.critic(y_real), s.real, fake, eps=eps)
            total = total + self.gradient_penalty * gp
            terms["gp"] = gp.detach()
        if self.drift > 0:
            drift = real_out.square().mean()
            total = total + self.drift * drift
            terms["drift"] = drift.detach()
        if r1_every_step:
            total = total + 0.5 * self.r1_gamma * r1
            terms["r1"] = r1.detach()
        total = self.extra_penalty("D", s, total, terms)
        if len(terms) == 1:
            terms.pop("adv")  # nothing but the adversarial term: "loss" says it all
        terms["loss"] = total
        return terms

    def d_regularization(self, s: Step) -> dict[str, Tensor]:
        """Lazy R1: γ/2 · E‖∇D(x)‖² on real data, times the interval so its expected gradient is unchanged."""
        r1 = regularizers.r1_penalty(s.critic(self._conditioning(s)), s.real)
        return {"r1": r1.detach(), "loss": 0.5 * self.r1_gamma * self.r1_interval * r1}

    def g_loss(self, s: Step) -> dict[str, Tensor]:
        cached = s.cache.pop("fake", None)
        if cached is not None:
            fake, y = cached
        else:
            y = s.fake_labels()
            fake = s.generate(s.latents(), y)
        terms: dict[str, Tensor] = {}
        total = self.g_adversarial_loss(s, fake, y, terms)
        total = self.extra_penalty("G", s, total, terms)
        terms["loss"] = total
        return terms

    def after_d_step(self, s: Step) -> None:
        if self.clip_weights is not None:
            regularizers.clip_weights_(s.D, self.clip_weights)
