"""Objectives from "Improved Techniques for Training GANs" (Salimans et al. 2016).

* :func:`feature_matching_loss`: the generator matches the mean of an intermediate
  discriminator layer on real data instead of maximizing the discriminator's output.
* :class:`HistoricalAverage`: the penalty ‖θ − mean of past θ‖², for G and for D.
* Semi-supervised GAN: a K-class discriminator whose "fake" class is implicit
  (its logit fixed to 0), so D(x) = Z(x) / (Z(x) + 1) with Z(x) = Σ_k exp l_k(x).

One-sided label smoothing is ``gancli.losses.logistic_d_loss(..., real_target=0.9)``.

Feature convention: a discriminator that supports feature matching implements
:class:`ExposesFeatures`, i.e. ``forward_with_features(x, y=None) -> (output, features)``,
where ``output`` is what ``forward`` returns and ``features`` is the (N, ...) activation
to match, so one forward pass gives both.
"""
from __future__ import annotations

from typing import Callable, Literal, Optional, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gancli.errors import GancliError


@runtime_checkable
class ExposesFeatures(Protocol):
    def forward_with_features(self, x: Tensor, y: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """Return (the discriminator's usual output, the intermediate features for matching)."""
        ...


def feature_matching_loss(
    real_features: Tensor,
    fake_features: Tensor,
    *,
    reduction: Literal["sum", "mean"] = "sum",
    mean_over_processes: Optional[Callable[[Tensor], Tensor]] = None,
) -> Tensor:
    """‖E f(x) − E f(G(z))‖²₂ over batch means; features are flattened per example.

    ``reduction="sum"`` is the paper's squared L2 norm; ``"mean"`` divides it by the
    number of features, which is what openai/improved-gan's training scripts compute.
    The real side is detached: this loss trains the generator only.

    ``mean_over_processes`` (``Step.mean_across_processes``) makes both means those of the
    global batch, so k processes compute what one process computes with the whole batch.
    """
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    real_mean = real_features.detach().flatten(1).float().mean(dim=0)
    fake_mean = fake_features.flatten(1).float().mean(dim=0)
    if mean_over_processes is not None:
        real_mean = mean_over_processes(real_mean)
        # the global mean's value, with this process's share of its gradient: the trainer's
        # average of the processes' gradients is then the gradient of the global loss
        fake_mean = fake_mean + (mean_over_processes(fake_mean.detach()) - fake_mean.detach())
    if real_mean.shape != fake_mean.shape:
        raise ValueError(
            f"feature matching needs the same features for real and fake, got "
            f"{tuple(real_mean.shape)} and {tuple(fake_mean.shape)}"
        )
    squared = (real_mean - fake_mean).square()
    return squared.sum() if reduction == "sum" else squared.mean()


class HistoricalAverage:
    """Running mean θ̄ of a module's past parameters and the penalty Σ‖θ − θ̄‖².

    θ̄ is the cumulative mean over every value seen: the parameters at construction
    and after each :meth:`update` (call it after every optimizer step), as in
    Salimans et al. The averages live in float32 whatever the parameters' dtype.

    Give it the unwrapped module (not a DDP wrapper), so parameter names match
    across runs. :meth:`state_tensors` / :meth:`load_state_tensors` hold the state as
    plain tensors for safetensors checkpoints.
    """

    def __init__(self, module: nn.Module):
        self.module = module
        self._averages: dict[str, Tensor] = {
            name: p.detach().float().clone() for name, p in self._parameters()
        }
        self._count = 1

    def _parameters(self) -> list[tuple[str, nn.Parameter]]:
        return [(name, p) for name, p in self.module.named_parameters() if p.requires_grad]

    @property
    def count(self) -> int:
        """How many parameter values the averages include."""
        return self._count

    def average(self, name: str) -> Tensor:
        return self._averages[name]

    def _average_on(self, name: str, p: Tensor) -> Tensor:
        avg = self._averages[name]
        if avg.device != p.device:
            avg = self._averages[name] = avg.to(p.device)
        return avg

    def penalty(self) -> Tensor:
        """Σ_params ‖θ − θ̄‖², differentiable in θ (θ̄ is a constant)."""
        terms = [(p.float() - self._average_on(name, p)).square().sum() for name, p in self._parameters()]
        if not terms:
            return torch.zeros(())
        return torch.stack(terms).sum()

    @torch.no_grad()
    def update(self) -> None:
        """Fold the current parameters into the running mean."""
        self._count += 1
        for name, p in self._parameters():
            avg = self._average_on(name, p)
            avg.add_((p.float() - avg) / self._count)

    def state_tensors(self) -> dict[str, Tensor]:
        state = {f"average.{name}": avg for name, avg in self._averages.items()}
        state["count"] = torch.tensor(self._count, dtype=torch.int64)
        return state

    def load_state_tensors(self, state: dict[str, Tensor]) -> None:
        expected = {f"average.{name}": p for name, p in self._parameters()}
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected) - {"count"})
        if "count" not in state or missing or unexpected:
            raise GancliError(
                "historical-average state does not match the model "
                f"(missing: {missing or 'none'}, unexpected: {unexpected or 'none'}); "
                "resume with the configuration the run was started with"
            )
        for key, p in expected.items():
            if state[key].shape != p.shape:
                raise GancliError(
                    f"historical-average tensor {key} has shape {tuple(state[key].shape)}, "
                    f"the model has {tuple(p.shape)}; resume with the original configuration"
                )
        self._averages = {
            key.removeprefix("average."): state[key].detach().float().to(p.device).clone()
            for key, p in expected.items()
        }
        self._count = int(state["count"])


def ssgan_gan_logit(class_logits: Tensor) -> Tensor:
    """The real-vs-fake logit of a K-class discriminator: logsumexp_k l_k.

    With the fake class's logit fixed to 0, D(x) = Z/(Z + 1) = σ(log Z), so any
    adversarial loss in gancli.losses can be applied to this logit.
    """
    return torch.logsumexp(class_logits.float(), dim=1)


def ssgan_supervised_loss(logits_labeled: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy over the K real classes, on raw logits (no softmax before it)."""
    return F.cross_entropy(logits_labeled.float(), labels)


def ssgan_unsupervised_d_loss(logits_unlabeled_real: Tensor, logits_fake: Tensor) -> Tensor:
    """−E log D(x) − E log(1 − D(G(z))) with D = σ(logsumexp l), in stable softplus form."""
    real = ssgan_gan_logit(logits_unlabeled_real)
    fake = ssgan_gan_logit(logits_fake)
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def ssgan_d_loss(
    logits_labeled: Tensor,
    labels: Tensor,
    logits_unlabeled_real: Tensor,
    logits_fake: Tensor,
    *,
    unsupervised_weight: float = 1.0,
) -> Tensor:
    """Semi-supervised discriminator loss: supervised CE + weight · unsupervised GAN loss.

    The paper adds the two terms (weight 1); openai/improved-gan's scripts use 0.5.
    """
    supervised = ssgan_supervised_loss(logits_labeled, labels)
    return supervised + unsupervised_weight * ssgan_unsupervised_d_loss(logits_unlabeled_real, logits_fake)
