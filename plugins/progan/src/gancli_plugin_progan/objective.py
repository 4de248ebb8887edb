"""Progressive growing as a gancli objective: growth, fade-in α, reals at the current resolution, WGAN-GP.

What each hook does (Karras et al. 2018 §2–3 and appendix A.1; tkarras/progressive_growing_of_gans
train.py and loss.py):

* ``grow``: the networks get the blocks of the resolution the schedule is at (a pure function
  of the images seen, gancli.growth.GrowthSchedule), so a checkpoint is rebuilt at its phase.
* ``begin_step``: α of both networks from the schedule (stored in their ``alpha`` buffers), and the
  reference's ``reset_opt_for_new_lod``: Adam's moments are cleared when a fade-in starts and
  when it ends.
* ``batch_size``: the per-resolution batch (``minibatch_dict``), else ``train.batch_size``.
* losses: G and D run at the current resolution. The real batch is average-pooled to it and,
  during a fade-in, blended with its 2×2-averaged-then-upsampled copy by 1 − α, as the
  reference's ``process_reals`` (FadeLOD) does, so the reals change as smoothly as the networks.
  D: WGAN loss E[D(G(z))] − E[D(x)], gradient penalty λ·E[(‖∇D(x̂)‖ − 1)²] on interpolates, and
  the drift term ε_drift·E[D(x)²] on reals (loss.py D_wgangp_acgan); G: −E[D(G(z))].

The gradient norm is measured in the pixels of the target resolution, as in the reference,
whose networks take and give full-resolution images (nearest-upsampled from the current
resolution; D average-pools them back first). For such an image the gradient with respect to the
full-resolution pixels is the current-resolution gradient spread over f×f pixels and divided by
f², f = target / current, so its norm is ‖∇_current D‖ / f: the penalty here is
(‖∇_current D‖/f − 1)² = (‖∇_current D‖ − f)² / f². Without this, D's Lipschitz target would jump
by 2 at every doubling.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import Tensor

from gancli.growth import GrowthSchedule, GrowthState, reals_at
from gancli.losses import wasserstein_d_loss, wasserstein_estimate, wasserstein_g_loss
from gancli.objective import Objective, OptimizerSettings, Progress, Step, make_optimizer
from gancli.regularizers import gradient_penalty


def mirrored(x: Tensor, u: Tensor) -> Tensor:
    """Flip the examples whose uniform draw ``u`` (shape (N, 1, 1, 1)) is below ½ left-right."""
    return torch.where(u < 0.5, x.flip(-1), x)


def penalty_in_target_pixels(critic, real: Tensor, fake: Tensor, eps: Tensor, factor: int,
                             target: float = 1.0) -> Tensor:
    """E[(‖∇x̂ D‖/factor − γ)²]/γ² for images ``factor`` times smaller than the target: WGAN-GP with the
    gradient norm of the nearest-upsampled target-resolution image (see the module docstring), and the
    official code's target γ (``wgan_target``; its loss divides by γ² as here)."""
    center = float(factor) * target
    return gradient_penalty(critic, real, fake, eps=eps, center=center) / center**2


@dataclass
class ProGANObjective(Objective):
    schedule: GrowthSchedule
    optimizer: OptimizerSettings = field(default_factory=lambda: OptimizerSettings(
        lr_g=1e-3, lr_d=1e-3, betas=(0.0, 0.99), eps=1e-8))
    gp_lambda: float = 10.0
    gp_target: float = 1.0
    drift: float = 1e-3
    lr_per_resolution: dict = field(default_factory=dict)  # resolution → the rate of G and D there
    mirror_augment: bool = False
    reset_optimizer_on_growth: bool = True
    n_critic: int = 1
    _optimizers: tuple = field(default=(), init=False, repr=False)
    _segment: Optional[int] = field(default=None, init=False, repr=False)

    # ------------------------------------------------------------ growth

    def state(self, progress: Progress) -> GrowthState:
        return self.schedule.state(progress.images_seen)

    def grow(self, progress: Progress, G, D) -> bool:
        state = self.state(progress)
        added = False
        while G.current_resolution < state.resolution:
            G.grow()
            D.grow()
            added = True
        if added:  # a network saved or sampled before the next begin_step shows the schedule's α
            self._set_alpha(state.alpha, G, D)
        return added

    def begin_step(self, progress: Progress, G, D) -> None:
        state = self.state(progress)
        self._set_alpha(state.alpha, G, D)
        segment = 2 * state.level - int(state.fading)  # one number per phase of the schedule
        if self.reset_optimizer_on_growth and self._segment is not None and segment != self._segment:
            for optimizer in self._optimizers:
                optimizer.state.clear()
        self._segment = segment
        if self.lr_per_resolution:  # the official config's G_lrate_dict / D_lrate_dict
            for optimizer, base in zip(self._optimizers, (self.optimizer.lr_g, self.optimizer.lr_d)):
                for group in optimizer.param_groups:
                    group["lr"] = self.lr_per_resolution.get(state.resolution, base)

    @staticmethod
    def _set_alpha(alpha: float, G, D) -> None:
        with torch.no_grad():
            G.alpha.fill_(alpha)
            D.alpha.fill_(alpha)

    def batch_size(self, progress: Progress) -> Optional[int]:
        return self.schedule.batch_size(progress.images_seen)

    def stage(self, progress: Progress) -> Optional[str]:
        """A label per growth phase ("4×4", "8×8 fade-in", "8×8"), for a grid at the end of each phase."""
        state = self.state(progress)
        size = f"{state.resolution}×{state.resolution}"
        return f"{size} fade-in" if state.fading else size

    # ------------------------------------------------------------ optimizers and state

    def optimizers(self, G, D):
        s = self.optimizer
        self._optimizers = (make_optimizer(G.parameters(), s, s.lr_g), make_optimizer(D.parameters(), s, s.lr_d))
        return self._optimizers

    def state_tensors(self) -> dict[str, Tensor]:
        return {} if self._segment is None else {"segment": torch.tensor(self._segment)}

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None:
        self._segment = int(tensors["segment"]) if "segment" in tensors else None

    # ------------------------------------------------------------ losses

    def d_loss(self, s: Step) -> dict[str, Tensor]:
        D = s.D
        real = reals_at(s.real, D.current_resolution, D.alpha if D.fading else None)
        if self.mirror_augment:
            real = mirrored(real, s.rand(1, 1, 1))
        with torch.no_grad():
            fake = s.generate(s.latents(), None, current_resolution=True)
        real_out, fake_out = s.discriminate(real), s.discriminate(fake)
        loss = wasserstein_d_loss(real_out, fake_out)
        terms = {"wdist": wasserstein_estimate(real_out, fake_out)}
        if self.gp_lambda > 0:
            factor = D.target_resolution // D.current_resolution
            gp = penalty_in_target_pixels(s.critic(), real, fake, s.rand(1, 1, 1), factor, self.gp_target)
            loss = loss + self.gp_lambda * gp
            terms["gp"] = gp.detach()
        if self.drift > 0:
            drift = real_out.square().mean()
            loss = loss + self.drift * drift
            terms["drift"] = drift.detach()
        terms["loss"] = loss
        return terms

    def g_loss(self, s: Step) -> dict[str, Tensor]:
        fake = s.generate(s.latents(), None, current_resolution=True)
        return {"loss": wasserstein_g_loss(s.discriminate(fake))}
