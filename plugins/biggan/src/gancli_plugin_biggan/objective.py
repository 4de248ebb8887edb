"""BigGAN's training objective: hinge loss, n_critic D steps, orthogonal regularization of G.

The adversarial part is the core :class:`~gancli.objective.AdversarialObjective` with the hinge
loss (BigGAN-PyTorch ``losses.py``: D minimizes E[relu(1 − D(x))] + E[relu(1 + D(G(z)))], G
minimizes −E[D(G(z))]). As in ``train_fns.GAN_training_function``, every D step and the G step
draw fresh latents and classes (no reuse of D's fakes).

Orthogonal regularization (paper §3.1): G's loss gets β/2·Σ_W ‖W Wᵀ ⊙ (1 − I)‖²_F over G's
weights with two or more axes, each reshaped to (out, in·k·k), the shared class embedding
excluded (``train_fns.py``: "Don't ortho reg shared, it makes no sense"). BigGAN-PyTorch adds
the gradient 2β·(W Wᵀ ⊙ (1 − I))·W straight to ``param.grad`` (``utils.ortho``); the gradient of
Σ‖W Wᵀ ⊙ (1 − I)‖² is 4·(W Wᵀ ⊙ (1 − I))·W, so the factor β/2 gives the reference's update
exactly for its β = 1e-4 (the paper writes the penalty as β·‖·‖², i.e. twice this strength if
taken literally). With gradient accumulation the term joins every micro-batch's loss, which the
trainer averages, so it is applied once per step as in the reference. The weights it sees are
the unnormalized W of the spectrally normalized layers, as in the reference (its SN layers keep
W as the parameter and divide on the fly).

Standing statistics: the core ``Objective.before_sampling`` gives an EMA generator BatchNorm
statistics of its own from ``standing_passes`` forward passes (16: ``utils.accumulate_standing_stats``,
``--num_standing_accumulations 16``) and refines its spectral-norm vectors u, v (copied from G, as
``ema_buffers = "copy"`` keeps them unit vectors) by power iterations on the averaged weights. Here
the passes have the size G is trained with per forward pass (BigGAN-PyTorch's ``G_batch_size``),
since G's BatchNorm normalises with that many examples. The live G keeps its running averages, which
BigGAN-PyTorch samples with by default (``--G_eval_mode``).

Cross-replica BatchNorm (§3, "cross-replica BatchNorm"): ``sync_batchnorm`` asks the trainer
for synchronized BatchNorm when several CUDA processes train; one device normalises per micro-batch.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gancli.objective import AdversarialObjective, Step
from gancli.regularizers import orthogonal_penalty


def generator_orthogonal_penalty(G: nn.Module) -> Tensor:
    """Σ‖W Wᵀ ⊙ (1 − I)‖²_F over G's weights, the shared class embedding excluded (unweighted)."""
    shared = getattr(G, "shared", None)
    exclude = tuple(shared.parameters()) if shared is not None else ()
    return orthogonal_penalty(G, exclude=exclude)


@dataclass
class BigGANObjective(AdversarialObjective):
    ortho_beta: float = 1e-4

    standing_passes: int = 16

    # cross-replica BatchNorm on several GPUs (the trainer converts the BatchNorm layers)
    sync_batchnorm = True

    def state_tensors(self) -> dict[str, Tensor]:
        # G's forward batch travels with the run, so a resumed run's first standing pass (a checkpoint or
        # sample grid before its first G step) uses it too, not the class default
        return {**super().state_tensors(), "standing_batch_size": torch.tensor(self.standing_batch_size)}

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None:
        if "standing_batch_size" in tensors:
            self.standing_batch_size = int(tensors["standing_batch_size"])
        super().load_state_tensors({k: v for k, v in tensors.items() if k != "standing_batch_size"})

    def g_loss(self, s: Step) -> dict[str, Tensor]:
        self.standing_batch_size = s.batch_size  # G's forward batch: the standing passes' size
        terms = super().g_loss(s)
        adversarial = terms["loss"]
        terms["adv"] = adversarial.detach()
        if self.ortho_beta > 0:
            penalty = generator_orthogonal_penalty(s.G).to(adversarial.device)
            terms["ortho"] = penalty.detach()
            terms["loss"] = adversarial + 0.5 * self.ortho_beta * penalty
        return terms
