"""The objective a family's ``build`` returns inside its :class:`GAN`: the hooks the trainer calls."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional, Sequence

import torch
from torch import Tensor, nn

from gancli.objective.phases import Phase
from gancli.objective.step import Progress, Step


class Objective:
    """Base class of a family's training objective; override what the family needs."""

    n_critic: int = 1
    # how the EMA generator treats buffers: "copy" them from G (running statistics, w_avg)
    # or "average" floating-point buffers like the weights
    ema_buffers: Literal["copy", "average"] = "copy"
    # with several CUDA processes, ask for synchronized (cross-replica) BatchNorm
    sync_batchnorm: bool = False
    # the EMA generator's standing-statistics pass (before_sampling): forward passes and their batch size
    standing_passes: int = 16
    standing_batch_size: int = 64

    def optimizers(self, G: nn.Module, D: nn.Module) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        raise NotImplementedError

    def phases(self) -> Sequence[Phase]:
        """The passes of an iteration, in order: by default ``d_steps(step)`` D steps, then one G step."""
        return [
            Phase("D", "D", self.d_loss, repeats=self.d_steps, after_step=self.after_d_step),
            Phase("G", "G", self.g_loss, real="none", after_step=self.after_g_step),
        ]

    def d_steps(self, step: int) -> int:
        """D updates at iteration ``step`` (a schedule may change it)."""
        return self.n_critic

    def grow(self, progress: Progress, G: nn.Module, D: nn.Module) -> bool:
        """Give the networks the layers they have at ``progress``; True when layers were added.

        Called before every iteration, when resuming and when a checkpoint is loaded for
        sampling (before its weights are loaded), so it must depend on ``progress`` only.
        New parameters get optimizer state and EMA copies from the trainer, matched by name.
        """
        return False

    def begin_step(self, progress: Progress, G: nn.Module, D: nn.Module) -> None:
        """Per-iteration schedules (learning rates, fade-in α); derive them from ``progress``."""

    def batch_size(self, progress: Progress) -> Optional[int]:
        """The global batch of this iteration, or None for ``train.batch_size``."""
        return None

    def stage(self, progress: Progress) -> Optional[str]:
        """A short label of the training stage at ``progress`` (e.g. a growth phase: "8×8 fade-in"), or None.

        When the label changes, the trainer saves the fixed-latent grid of the stage that ended
        (``samples/stage-NN-....png``) and at the end assembles them into ``RUN/growth.gif``.
        """
        return None

    def d_loss(self, s: Step) -> dict[str, Tensor]:
        raise NotImplementedError

    def g_loss(self, s: Step) -> dict[str, Tensor]:
        raise NotImplementedError

    def after_backward(self, phase: Phase, module: nn.Module) -> None:
        """Between backward and the optimizer step: gradients are summed over micro-batches,
        averaged over processes and unscaled (gradient clipping, ``nan_to_num``, ...)."""

    def after_d_step(self, s: Step) -> None:
        pass

    def after_g_step(self, s: Step) -> None:
        pass

    def before_sampling(self, generator: nn.Module, *, is_ema: bool) -> None:
        """Before the trainer samples from or saves ``generator``.

        By default an EMA copy gets estimates of its own where it holds some that belong to G:

        * spectrally normalized layers re-run their power method: in eval mode they divide by
          σ̂ = uᵀWv from the stored u, v, which the EMA copy takes from G (they are buffers),
          but its W is an average of past weights whose singular vectors those are not
          (:func:`gancli.nn.reestimate_spectral_norm`; BigGAN-PyTorch gets the same effect by
          running a power iteration on every forward, eval mode included);
        * BatchNorm layers get a standing-statistics pass of ``standing_passes`` forward
          passes of ``standing_batch_size`` (:func:`gancli.nn.norms.standing_statistics`): the
          running statistics copied from G belong to another network.
        """
        if is_ema:
            from gancli.nn.norms import has_batch_norm, standing_statistics
            from gancli.nn.spectral import is_spectrally_normalized, reestimate_spectral_norm

            if any(is_spectrally_normalized(m) for m in generator.modules()):
                reestimate_spectral_norm(generator)
            if has_batch_norm(generator):
                standing_statistics(generator, batches=self.standing_passes, batch_size=self.standing_batch_size)

    def state_tensors(self) -> dict[str, Tensor]:
        """Objective state of this process (saved per process with resume checkpoints)."""
        return {}

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None:
        pass


@dataclass
class GAN:
    """What ``Family.build`` returns."""

    generator: nn.Module
    discriminator: nn.Module
    objective: Objective
