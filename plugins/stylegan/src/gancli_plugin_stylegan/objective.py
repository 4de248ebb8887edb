"""StyleGAN v1's training objective: the non-saturating logistic loss with R1, style mixing, optional growing.

* Loss (gancli_plugin_stylegan.losses; NVlabs/stylegan ``training/loss.py``, ``G_logistic_nonsaturating``
  and ``D_logistic_simplegp``): D minimizes softplus(D(G(z))) + softplus(−D(x)) + γ/2·‖∇ₓD(x)‖²
  on real images (γ = 10), G minimizes softplus(−D(G(z))). R1 runs D in fp32 under mixed
  precision (``Step.critic``). With ``r1_interval`` k > 1 R1 is its own "Dreg" pass every k
  steps, weighted by k, with D's Adam settings corrected (lr·c, β^c, c = k/(k+1)):
  StyleGAN2's lazy regularization (stylegan2-ada-pytorch ``training_loop.py``), from
  :class:`gancli.objective.AdversarialObjective`.
* Fakes come from :func:`~gancli_plugin_stylegan.mixing.generate_with_ws`: the mapping network twice, then the synthesis
  network, with style mixing (probability 0.9, per-example crossover; see
  gancli_plugin_stylegan.mixing). The first mapping call moves G's ``w_avg``; the second
  does not (v1 ``G_style`` updates the average from the first latents only). With one
  D step per G step and no accumulation the G step reuses the D step's fakes and their
  graph (G has not changed in between), as the core's ``reuse_fake`` does.
* Growing (``growth`` set): :meth:`grow` adds the blocks of the schedule's resolution to G
  and D, :meth:`begin_step` sets the fade-in α, the learning rate of the resolution
  (v1 ``G_lrate_dict``) and clears Adam's moments whenever a fade-in starts or ends (v1
  ``reset_opt_for_new_lod``); :meth:`batch_size` follows ``batch_per_resolution``. Real
  images are shown at the network's resolution: average-pooled to it and, during a
  fade-in, blended with their 2× coarser version by the same α (v1 ``process_reals``:
  ``FadeLOD``), then upsampled back to the data's size, which D pools again. R1 is taken
  with respect to that full-size input, as v1 does.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Optional

import torch
from torch import Tensor

from gancli.growth import GrowthSchedule, reals_at
from gancli.objective import AdversarialObjective, Progress, Step, lazy_regularization

from gancli_plugin_stylegan.losses import LogisticR1Losses
from gancli_plugin_stylegan.mixing import generate_with_ws


@dataclass
class StyleGANObjective(LogisticR1Losses, AdversarialObjective):
    family: ClassVar[str] = "stylegan"
    _fake_key: ClassVar[str] = "stylegan.fake"

    style_mixing_prob: float = 0.9
    lr_per_resolution: dict = field(default_factory=dict)
    growth: Optional[GrowthSchedule] = None
    reset_optimizer_on_growth: bool = True
    _optimizers: tuple = field(default=(), init=False, repr=False)
    _growth_key: Optional[tuple[int, bool]] = field(default=None, init=False, repr=False)

    # ---------------------------------------------------------------- schedules

    def optimizers(self, G, D):
        self._optimizers = super().optimizers(G, D)
        return self._optimizers

    def grow(self, progress: Progress, G, D) -> bool:
        if self.growth is None:
            return False
        state = self.growth.state(progress.images_seen)
        added = G.synthesis.grow_to(state.resolution)
        added = D.grow_to(state.resolution) or added
        G.synthesis.set_fade(state.alpha)
        D.set_fade(state.alpha)
        return added

    def begin_step(self, progress: Progress, G, D) -> None:
        resolution = G.synthesis.resolution
        if self.growth is not None:
            state = self.growth.state(progress.images_seen)
            resolution = state.resolution
            G.synthesis.set_fade(state.alpha)
            D.set_fade(state.alpha)
            key = (state.level, state.fading)
            if self.reset_optimizer_on_growth and self._growth_key is not None and key != self._growth_key:
                for optimizer in self._optimizers:
                    optimizer.state.clear()
            self._growth_key = key
        self._set_learning_rates(resolution)

    def _set_learning_rates(self, resolution: int) -> None:
        if not self._optimizers:
            return
        lr = float(self.lr_per_resolution.get(resolution, self.optimizer.lr_g))
        # D's rate carries the lazy-regularization correction that optimizers() applied to it
        lr_d, _ = lazy_regularization(lr, self.optimizer.betas, self.r1_interval if self.lazy_r1 else 1)
        opt_g, opt_d = self._optimizers
        for optimizer, value in ((opt_g, lr), (opt_d, lr_d)):
            for group in optimizer.param_groups:
                group["lr"] = value

    def batch_size(self, progress: Progress) -> Optional[int]:
        return self.growth.batch_size(progress.images_seen) if self.growth is not None else None

    # ---------------------------------------------------------------- losses (LogisticR1Losses)

    def generate(self, s: Step) -> Tensor:
        return generate_with_ws(s, self.style_mixing_prob, layers=s.G.synthesis.active_ws)[0]

    def minibatch_stddev(self, D):
        return getattr(getattr(D, "output", None), "mbstd", None)

    def reals(self, s: Step) -> Tensor:
        D = s.D
        alpha = float(D.fade_alpha) if D.growing else 1.0
        # the networks take and give full-size images (NVlabs' growing mode): reals at the phase, upsampled back
        return reals_at(s.real, D.current_resolution, alpha if alpha < 1.0 else None, full_size=True)

    def g_loss(self, s: Step) -> dict[str, Tensor]:
        return {"loss": self.g_adversarial(s)}

    # ---------------------------------------------------------------- state

    def state_tensors(self) -> dict[str, Tensor]:
        if self._growth_key is None:
            return {}
        level, fading = self._growth_key
        return {"growth_phase": torch.tensor([level, int(fading)])}

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None:
        phase = tensors.get("growth_phase")
        self._growth_key = None if phase is None else (int(phase[0]), bool(phase[1]))
