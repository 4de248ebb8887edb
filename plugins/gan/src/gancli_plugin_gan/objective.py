"""The gan family's objective: the core adversarial objective with the Improved-GAN techniques.

Salimans et al. 2016, all off by default:

* ``feature_matching``: G minimizes ‖E f(x) − E f(G(z))‖² over the features the
  discriminator returns with ``D(x, y, return_features=True) -> (output, features)``,
  plus ``feature_matching_adversarial`` × the usual adversarial G loss (0: the paper's pure form).
  ``feature_matching_target``: "independent" takes E f(x) on a fresh real batch, as
  openai/improved-gan does; "same_batch" on the batch D was just trained on.
* ``historical_averaging`` λ: adds λ·‖θ − mean of past θ‖² to the G and D losses; the
  running means are objective state, saved with resume checkpoints.
* ``semi_supervised``: D returns K class logits; real-vs-fake uses logsumexp of them
  (the fake class's logit is fixed to 0) and real examples whose label is ≥ 0 add a
  cross-entropy term; label −1 marks unlabelled data (``data.labeled=N``). D is then
  not class-conditional: it is called without labels. With ``supervised_batch`` n > 0
  the cross-entropy is taken instead on n labelled examples drawn from the last
  ``supervised_pool`` labelled examples seen, as the paper trains on a labelled batch
  beside every unlabelled one (with 100 labels per class a batch of 64 holds about one).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

import torch
from torch import Tensor

from gancli.improved_losses import HistoricalAverage, feature_matching_loss, ssgan_gan_logit, ssgan_supervised_loss
from gancli.objective import AdversarialObjective, LabelledPool, Step


@dataclass
class ImprovedGANObjective(AdversarialObjective):
    feature_matching: bool = False
    feature_matching_adversarial: float = 0.0
    feature_matching_target: Literal["independent", "same_batch"] = "independent"
    historical_averaging: float = 0.0
    semi_supervised: bool = False
    unsupervised_weight: float = 1.0
    supervised_batch: int = 0
    supervised_pool: int = 2048

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.semi_supervised and self.loss not in ("minimax", "nonsaturating"):
            raise ValueError(f"the semi-supervised discriminator needs a logistic loss, not {self.loss}")
        if self.feature_matching_target not in ("independent", "same_batch"):
            raise ValueError(f"feature_matching_target must be independent or same_batch, got {self.feature_matching_target!r}")
        self._history: Optional[dict[str, HistoricalAverage]] = None
        self._pending_history: Optional[dict[str, Tensor]] = None
        self._labelled = LabelledPool(self.supervised_pool) if self.semi_supervised and self.supervised_batch else None

    @property
    def labels_condition_d(self) -> bool:
        return not self.semi_supervised  # a semi-supervised D takes the labels as targets

    @property
    def g_phase_real(self) -> str:
        return "new" if self.feature_matching and self.feature_matching_target == "independent" else "none"

    def optimizers(self, G, D):
        if self.historical_averaging > 0:
            # the averages start from the initial weights; a resume replaces them right after
            self._history = {"G": HistoricalAverage(G), "D": HistoricalAverage(D)}
            if self._pending_history is not None:
                self._load_history(self._pending_history)
                self._pending_history = None
        return super().optimizers(G, D)

    def adversarial_logit(self, out: Tensor) -> Tensor:
        return ssgan_gan_logit(out) if self.semi_supervised else out

    def d_loss(self, s: Step) -> dict[str, Tensor]:
        if self.feature_matching and self.feature_matching_target == "same_batch":
            s.cache["real"] = (s.real, s.labels)
        return super().d_loss(s)

    def d_adversarial_loss(self, s: Step, adv: Tensor, real_out: Tensor, terms: dict[str, Tensor]) -> Tensor:
        if self._labelled is not None:
            self._labelled.add(s.real, s.labels)
            supervised = real_out.new_zeros(())
            if self._labelled.size:
                index = s.randint(self._labelled.size, n=self.supervised_batch)
                x_labelled, y_labelled = self._labelled.take(index)
                supervised = ssgan_supervised_loss(s.discriminate(x_labelled), y_labelled)
        elif self.semi_supervised:
            supervised = self._supervised_term(real_out, s.labels)
        else:
            return adv
        terms["supervised"] = supervised.detach()
        return supervised + self.unsupervised_weight * adv

    @staticmethod
    def _supervised_term(class_logits: Tensor, labels: Optional[Tensor]) -> Tensor:
        if labels is None:
            return class_logits.new_zeros(())
        labelled = labels >= 0
        if not bool(labelled.any()):
            return class_logits.new_zeros(())
        return ssgan_supervised_loss(class_logits[labelled], labels[labelled])

    def g_adversarial_loss(self, s: Step, fake: Tensor, y: Optional[Tensor], terms: dict[str, Tensor]) -> Tensor:
        if not self.feature_matching:
            return super().g_adversarial_loss(s, fake, y, terms)
        if self.feature_matching_target == "same_batch" and "real" in s.cache:
            real, labels = s.cache["real"]
        else:
            real, labels = s.real, s.labels
        with torch.no_grad():  # the real side is a constant target
            _, real_features = s.discriminate(real, None if self.semi_supervised else labels, return_features=True)
        out, fake_features = s.discriminate(fake, y, return_features=True)
        total = feature_matching_loss(real_features, fake_features, mean_over_processes=s.mean_across_processes)
        terms["fm"] = total.detach()
        if self.feature_matching_adversarial > 0:
            adv = self._loss.g_loss(self.adversarial_logit(out))
            terms["adv"] = adv.detach()
            total = total + self.feature_matching_adversarial * adv
        return total

    def extra_penalty(self, network, s: Step, total: Tensor, terms: dict[str, Tensor]) -> Tensor:
        if self._history is None:
            return total
        penalty = self._history[network].penalty().to(total.device)
        terms["hist"] = penalty.detach()
        return total + self.historical_averaging * penalty

    def after_d_step(self, s: Step) -> None:
        super().after_d_step(s)
        if self._history is not None:
            self._history["D"].update()

    def after_g_step(self, s: Step) -> None:
        if self._history is not None:
            self._history["G"].update()

    def state_tensors(self) -> dict[str, Tensor]:
        state: dict[str, Tensor] = {}
        if self._labelled is not None:
            state.update({f"labelled.{k}": v for k, v in self._labelled.state_tensors().items()})
        if self._history is None:
            return state
        state.update({
            f"history.{side}.{key}": value
            for side, average in self._history.items()
            for key, value in average.state_tensors().items()
        })
        return state

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None:
        if self._labelled is not None:
            self._labelled.load_state_tensors(
                {k[len("labelled."):]: v for k, v in tensors.items() if k.startswith("labelled.")}
            )
        history = {k: v for k, v in tensors.items() if k.startswith("history.")}
        if self.historical_averaging <= 0:
            return
        if self._history is None:  # restored before optimizers() made the averages
            self._pending_history = history
            return
        self._load_history(history)

    def _load_history(self, tensors: dict[str, Tensor]) -> None:
        assert self._history is not None
        for side, average in self._history.items():
            prefix = f"history.{side}."
            average.load_state_tensors({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
