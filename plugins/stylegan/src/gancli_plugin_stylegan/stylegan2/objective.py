"""StyleGAN2's objective: logistic loss, lazy R1 and path-length regularization as their own phases.

NVlabs/stylegan2-ada-pytorch ``training/loss.py`` (``StyleGAN2Loss``) and
``training/training_loop.py``; Karras et al. 2020 §3.1–§3.2 and appendix B:

* phases: "D" (softplus(D(G(z))) + softplus(−D(x))), "Dreg" every ``r1_interval`` (16)
  steps on the reals D just saw (γ/2 · ‖∇ₓD(x)‖², times the interval), "G"
  (softplus(−D(G(z)))), "Gpl" every ``pl_interval`` (4) steps (path length, times the interval);
* lazy regularization corrects Adam for both networks: lr·c and β^c with c = k/(k + 1), k the
  network's regularization interval (``lazy_regularization``), as NVlabs' ``mb_ratio``;
* path length (§3.2): with y ~ N(0, I)/√(H·W) per pixel, J_wᵀy = ∇_w (g(w)·y) per example, its
  length ‖J_wᵀy‖ taken as √(mean over the w layers of Σ over w_dim of the squared
  gradient); a ← a + decay·(mean length − a); penalty E (length − a)², times the weight 2. The
  pass uses batch / 2 latents (``pl_batch_shrink``) and style mixing, as NVlabs' ``run_G``.
  ``a`` (``pl_mean``) is objective state, saved with resume checkpoints. Its update uses the
  mean length over all processes (one process's numbers whatever the split; NVlabs keep one
  ``pl_mean`` per GPU), with the gradient of the local mean;
* fakes: the mapping network twice with style mixing (p 0.9, per-example crossover:
  gancli_plugin_stylegan.mixing), then the synthesis network; with one D step and no
  accumulation the G step reuses the D step's fakes and their graph. The logistic loss and
  R1 are v1's (gancli_plugin_stylegan.losses).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar, Optional, Sequence

import torch
from torch import Tensor

from gancli.objective import AdversarialObjective, Phase, Step, lazy_regularization, make_optimizer

from gancli_plugin_stylegan.losses import LogisticR1Losses
from gancli_plugin_stylegan.mixing import generate_with_ws


def path_lengths(images: Tensor, ws: Tensor, noise: Tensor) -> Tensor:
    """(N,) lengths ‖J_wᵀ y‖ of the generator's Jacobian at ws applied to image-space noise y (NVlabs ``pl_lengths``).

    ``images`` must come from ``ws`` through a differentiable generator; ``noise`` is y, shaped
    like the images (NVlabs: N(0, 1)/√(H·W)). The graph is kept (create_graph) so that a
    penalty on the lengths trains the generator.
    """
    wide = torch.promote_types(images.dtype, torch.float32)  # half precision up to float32, float64 kept
    (grads,) = torch.autograd.grad((images.to(wide) * noise.to(wide)).sum(), ws, create_graph=True)
    return grads.to(wide).square().sum(dim=2).mean(dim=1).sqrt()


def path_length_penalty(lengths: Tensor, pl_mean: Tensor, decay: float, *,
                        batch_mean: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    """(E (length − a')², a') with a' = a + decay·(mean length − a), a = ``pl_mean``.

    ``batch_mean`` replaces the mean length in the update (the mean over all processes);
    the returned a' is not detached (NVlabs' penalty differentiates through it too).
    """
    mean = lengths.mean() if batch_mean is None else batch_mean
    new_mean = pl_mean.to(lengths.device, lengths.dtype).lerp(mean, decay)
    return (lengths - new_mean).square().mean(), new_mean


@dataclass
class StyleGAN2Objective(LogisticR1Losses, AdversarialObjective):
    family: ClassVar[str] = "stylegan2"
    _fake_key: ClassVar[str] = "stylegan2.fake"

    style_mixing_prob: float = 0.9
    pl_weight: float = 2.0
    pl_interval: int = 4
    pl_decay: float = 0.01
    pl_batch_shrink: int = 2
    pl_mean: Tensor = field(default_factory=lambda: torch.zeros(()), repr=False)

    @property
    def lazy_pl(self) -> bool:
        return self.pl_weight > 0 and self.pl_interval > 1

    def phases(self) -> Sequence[Phase]:
        phases = [Phase("D", "D", self.d_loss, repeats=self.d_steps)]
        if self.lazy_r1:
            phases.append(Phase("Dreg", "D", self.d_regularization, interval=self.r1_interval, real="last"))
        phases.append(Phase("G", "G", self.g_loss, real="none"))
        if self.lazy_pl:
            phases.append(Phase("Gpl", "G", self.g_regularization, interval=self.pl_interval, real="none"))
        return phases

    def lazy_settings(self) -> dict[str, tuple[float, tuple[float, float]]]:
        """{"G": (lr, betas), "D": (lr, betas)} after the lazy-regularization correction of each network."""
        s = self.optimizer
        return {
            "G": lazy_regularization(s.lr_g, s.betas, self.pl_interval if self.lazy_pl else 1),
            "D": lazy_regularization(s.lr_d, s.betas, self.r1_interval if self.lazy_r1 else 1),
        }

    def optimizers(self, G, D):
        settings = self.lazy_settings()
        (lr_g, betas_g), (lr_d, betas_d) = settings["G"], settings["D"]
        self._optimizers = (make_optimizer(G.parameters(), self.optimizer, lr_g, betas_g),
                            make_optimizer(D.parameters(), self.optimizer, lr_d, betas_d))
        return self._optimizers

    # ---------------------------------------------------------------- losses

    def generate(self, s: Step) -> Tensor:
        return generate_with_ws(s, self.style_mixing_prob)[0]

    def g_loss(self, s: Step) -> dict[str, Tensor]:
        total = self.g_adversarial(s)
        terms = {}
        if self.pl_weight > 0 and not self.lazy_pl:  # pl_interval 1: in the main step (NVlabs' "Gboth")
            pl = self._path_length_terms(s)
            total = total + self.pl_weight * pl["pl_penalty"]
            terms.update({k: v.detach() for k, v in pl.items()})
        terms["loss"] = total
        return terms

    def g_regularization(self, s: Step) -> dict[str, Tensor]:
        """Path-length regularization on batch / pl_batch_shrink latents, times the interval."""
        terms = self._path_length_terms(s)
        loss = self.pl_weight * self.pl_interval * terms["pl_penalty"]
        return {**{k: v.detach() for k, v in terms.items()}, "loss": loss}

    def _path_length_terms(self, s: Step) -> dict[str, Tensor]:
        n = max(1, s.batch_size // self.pl_batch_shrink)
        images, ws = generate_with_ws(s, self.style_mixing_prob, n)
        h, w = images.shape[2], images.shape[3]
        noise = s.randn(*images.shape[1:], n=n) / math.sqrt(h * w)
        lengths = path_lengths(images, ws, noise)
        local = lengths.mean()
        overall = s.mean_across_processes(local.detach())
        batch_mean = local + (overall - local).detach()  # the value over all processes, the gradient of ours
        penalty, new_mean = path_length_penalty(lengths, self.pl_mean, self.pl_decay, batch_mean=batch_mean)
        self.pl_mean = new_mean.detach()
        return {"pl_penalty": penalty, "pl_length": local.detach(), "pl_mean": self.pl_mean}

    # ---------------------------------------------------------------- state

    def state_tensors(self) -> dict[str, Tensor]:
        return {"pl_mean": self.pl_mean.detach().float().cpu().reshape(())}

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None:
        if "pl_mean" in tensors:
            self.pl_mean = tensors["pl_mean"].float().reshape(())
