"""What a family's ``build`` returns, and how the trainer drives it.

A :class:`GAN` bundles a generator, a discriminator and an :class:`Objective`. The
trainer owns the loop (data, devices, precision, EMA, checkpoints); the objective
owns the maths of one iteration through hooks:

* ``optimizers(G, D)``: the two optimizers (defaults from the family's config).
* ``begin_step(step, G, D)``: per-step schedules (growth phases, fade-in α, lr).
* ``d_loss(step)`` / ``g_loss(step)``: dicts of named scalar terms; the trainer
  back-propagates ``"loss"`` and logs the rest. ``n_critic`` D updates run per G update.
* ``after_d_step`` / ``after_g_step``: e.g. WGAN weight clipping, historical averages.
* ``state_tensors`` / ``load_state_tensors``: extra state saved with resume checkpoints.

:class:`AdversarialObjective` is the common configurable objective that most
families use as it is: one adversarial loss plus optional regularizers.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Optional

import torch
from torch import Tensor, nn

from gancli import improved_losses, losses, regularizers


class Step:
    """One training iteration as the objective sees it.

    ``G`` and ``D`` are the modules to call in the current phase (wrapped for
    multi-process training where that applies). ``real``/``labels`` are this D
    step's batch, on the device, images in [-1, 1].
    """

    def __init__(
        self,
        *,
        index: int,
        real: Tensor,
        labels: Optional[Tensor],
        G: nn.Module,
        D: nn.Module,
        z_dim: int,
        num_classes: int,
        latent_generator: torch.Generator,
        grad_scale: float = 1.0,
        autocast: Callable[[], ContextManager] = nullcontext,
    ) -> None:
        self.index = index
        self.real = real
        self.labels = labels
        self.G = G
        self.D = D
        self.z_dim = z_dim
        self.num_classes = num_classes
        self.latent_generator = latent_generator
        self.grad_scale = grad_scale
        self.autocast = autocast
        self.cache: dict[str, Any] = {}

    @property
    def batch_size(self) -> int:
        return self.real.shape[0]

    @property
    def device(self) -> torch.device:
        return self.real.device

    def latents(self, n: Optional[int] = None) -> Tensor:
        n = self.batch_size if n is None else n
        return torch.randn(n, self.z_dim, generator=self.latent_generator, device=self.device)

    def fake_labels(self, n: Optional[int] = None) -> Optional[Tensor]:
        """Classes for generated samples: uniform over the classes, None if unconditional."""
        if self.num_classes <= 0:
            return None
        n = self.batch_size if n is None else n
        return torch.randint(
            0, self.num_classes, (n,), generator=self.latent_generator, device=self.device
        )

    def generate(self, z: Tensor, y: Optional[Tensor] = None) -> Tensor:
        with self.autocast():
            return self.G(z, y)

    def discriminate(self, x: Tensor, y: Optional[Tensor] = None, **kwargs: Any) -> Any:
        with self.autocast():
            out = self.D(x, y, **kwargs)
        if isinstance(out, tuple):
            return tuple(o.float() for o in out)
        return out.float()


class Objective:
    """Base class of a family's training objective; override what the family needs."""

    n_critic: int = 1
    # set True for models whose forward skips parameters (growing or branching nets) under DDP
    find_unused_parameters: bool = False

    def optimizers(self, G: nn.Module, D: nn.Module) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        raise NotImplementedError

    def begin_step(self, step: int, G: nn.Module, D: nn.Module) -> None:
        pass

    def d_loss(self, s: Step) -> dict[str, Tensor]:
        raise NotImplementedError

    def g_loss(self, s: Step) -> dict[str, Tensor]:
        raise NotImplementedError

    def after_d_step(self, s: Step) -> None:
        pass

    def after_g_step(self, s: Step) -> None:
        pass

    def state_tensors(self) -> dict[str, Tensor]:
        return {}

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None:
        pass


@dataclass
class GAN:
    """What ``Family.build`` returns."""

    generator: nn.Module
    discriminator: nn.Module
    objective: Objective


@dataclass
class OptimizerSettings:
    name: str = "adam"  # adam | rmsprop
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    eps: float = 1e-8


def make_optimizer(params, settings: OptimizerSettings, lr: float) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    if settings.name == "adam":
        # foreach is the fast multi-tensor path on every device
        return torch.optim.Adam(params, lr=lr, betas=tuple(settings.betas), eps=settings.eps, foreach=True)
    if settings.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, foreach=True)
    raise ValueError(f"unknown optimizer {settings.name!r}")


class LabelledPool:
    """The last ``capacity`` labelled real examples seen (a ring buffer), to draw labelled batches from.

    Its contents are objective state (``state_tensors``), so a resumed run draws the same
    batches. With several processes each keeps the examples of its own share of the batches.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("the labelled pool needs a capacity of at least 1")
        self.capacity = capacity
        self.x: Optional[Tensor] = None
        self.y: Optional[Tensor] = None
        self.count = 0  # examples ever added

    @property
    def size(self) -> int:
        return min(self.count, self.capacity)

    def add(self, x: Tensor, labels: Optional[Tensor]) -> None:
        if labels is None:
            return
        keep = labels >= 0
        if not bool(keep.any()):
            return
        x, labels = x.detach()[keep][-self.capacity:], labels[keep][-self.capacity:]
        if self.x is None:
            self.x = x.new_zeros((self.capacity, *x.shape[1:]))
            self.y = labels.new_zeros((self.capacity,))
        elif self.x.device != x.device:
            self.x, self.y = self.x.to(x.device), self.y.to(x.device)
        positions = (self.count + torch.arange(len(x), device=x.device)) % self.capacity
        self.x[positions] = x.to(self.x.dtype)
        self.y[positions] = labels
        self.count += len(x)

    def draw(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """n examples drawn uniformly, with replacement, from the pool (which must not be empty)."""
        assert self.x is not None and self.y is not None and self.size > 0
        index = torch.randint(self.size, (n,), generator=generator, device=generator.device).to(self.x.device)
        return self.x[index], self.y[index]

    def state_tensors(self) -> dict[str, Tensor]:
        if self.x is None or self.y is None:
            return {}
        return {"x": self.x[: self.size], "y": self.y[: self.size], "count": torch.tensor(self.count)}

    def load_state_tensors(self, state: dict[str, Tensor]) -> None:
        if not state:
            self.x, self.y, self.count = None, None, 0
            return
        size = len(state["y"])
        self.x = state["x"].new_zeros((self.capacity, *state["x"].shape[1:]))
        self.y = state["y"].new_zeros((self.capacity,))
        self.x[:size], self.y[:size] = state["x"], state["y"]
        self.count = int(state["count"])


@dataclass
class AdversarialObjective(Objective):
    """One adversarial loss (gancli.losses) plus optional regularizers.

    ``reuse_fake``: with one D step per G step, the G step back-propagates through
    the same G(z) that the D step scored (G is unchanged in between), which saves a
    generator forward pass per iteration, as the PyTorch DCGAN example does.

    Improved-GAN techniques (Salimans et al. 2016), usable by any family, all off by default:

    * ``feature_matching``: G minimizes ‖E f(x) − E f(G(z))‖² over the features the
      discriminator returns with ``D(x, y, return_features=True) -> (output, features)``,
      plus ``feature_matching_adversarial`` × the usual adversarial G loss (0: the paper's pure form).
    * ``historical_averaging`` λ: adds λ·‖θ − mean of past θ‖² to the G and D losses; the
      running means are objective state, saved with resume checkpoints.
    * ``real_label`` < 1: one-sided label smoothing (fake targets stay 0).
    * ``semi_supervised``: D returns K class logits; real-vs-fake uses logsumexp of them
      (the fake class's logit is fixed to 0) and real examples whose label is ≥ 0 add a
      cross-entropy term; label −1 marks unlabelled data (``data.labeled=N``). D is then
      not class-conditional: it is called without labels. With ``supervised_batch`` n > 0
      the cross-entropy is taken instead on n labelled examples drawn from the last
      ``supervised_pool`` labelled examples seen, as the paper trains on a labelled batch
      beside every unlabelled one (with 100 labels per class a batch of 64 holds about one).
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
    feature_matching: bool = False
    feature_matching_adversarial: float = 0.0
    historical_averaging: float = 0.0
    semi_supervised: bool = False
    unsupervised_weight: float = 1.0
    supervised_batch: int = 0
    supervised_pool: int = 2048

    def __post_init__(self) -> None:
        self._loss = losses.get_loss(self.loss)
        if self.real_label != 1.0 and not self._loss.supports_label_smoothing:
            raise ValueError(f"label smoothing does not apply to the {self.loss} loss")
        if self.semi_supervised and self.loss not in ("minimax", "nonsaturating"):
            raise ValueError(f"the semi-supervised discriminator needs a logistic loss, not {self.loss}")
        self._history: Optional[dict[str, improved_losses.HistoricalAverage]] = None
        self._pending_history: Optional[dict[str, Tensor]] = None
        self._labelled = LabelledPool(self.supervised_pool) if self.semi_supervised and self.supervised_batch else None

    def optimizers(self, G, D):
        if self.historical_averaging > 0:
            # the averages start from the initial weights; a resume replaces them right after
            self._history = {"G": improved_losses.HistoricalAverage(G), "D": improved_losses.HistoricalAverage(D)}
            if self._pending_history is not None:
                self._load_history(self._pending_history)
                self._pending_history = None
        s = self.optimizer
        return make_optimizer(G.parameters(), s, s.lr_g), make_optimizer(D.parameters(), s, s.lr_d)

    def _conditioning(self, s: Step) -> Optional[Tensor]:
        """The labels D is conditioned on: none for a semi-supervised D, whose labels are targets."""
        return None if self.semi_supervised else s.labels

    def _gan_logit(self, out: Tensor) -> Tensor:
        return improved_losses.ssgan_gan_logit(out) if self.semi_supervised else out

    def _supervised_term(self, class_logits: Tensor, labels: Optional[Tensor]) -> Tensor:
        if labels is None:
            return class_logits.new_zeros(())
        labelled = labels >= 0
        if not bool(labelled.any()):
            return class_logits.new_zeros(())
        return improved_losses.ssgan_supervised_loss(class_logits[labelled], labels[labelled])

    def _history_penalty(self, side: str, total: Tensor, terms: dict[str, Tensor]) -> Tensor:
        if self._history is None:
            return total
        penalty = self._history[side].penalty().to(total.device)
        terms["hist"] = penalty.detach()
        return total + self.historical_averaging * penalty

    def _fake_for_d(self, s: Step) -> tuple[Tensor, Optional[Tensor]]:
        z, y = s.latents(), s.fake_labels()
        if self.reuse_fake and self.n_critic == 1:
            fake = s.generate(z, y)  # keeps G's graph for the G step
            s.cache["fake"] = (fake, y)
        else:
            with torch.no_grad():
                fake = s.generate(z, y)
        return fake, y

    def d_loss(self, s: Step) -> dict[str, Tensor]:
        fake, y_fake = self._fake_for_d(s)
        y_real = self._conditioning(s)
        real_out = s.discriminate(s.real, y_real)
        fake_out = s.discriminate(fake.detach(), y_fake)
        adv = self._loss.d_loss(self._gan_logit(real_out), self._gan_logit(fake_out), self.real_label)
        terms: dict[str, Tensor] = {"adv": adv.detach()}
        total = adv
        if self._labelled is not None:
            self._labelled.add(s.real, s.labels)
            supervised = real_out.new_zeros(())
            if self._labelled.size:
                x_labelled, y_labelled = self._labelled.draw(self.supervised_batch, s.latent_generator)
                supervised = improved_losses.ssgan_supervised_loss(s.discriminate(x_labelled), y_labelled)
            total = supervised + self.unsupervised_weight * adv
            terms["supervised"] = supervised.detach()
        elif self.semi_supervised:
            supervised = self._supervised_term(real_out, s.labels)
            total = supervised + self.unsupervised_weight * adv
            terms["supervised"] = supervised.detach()
        if self.loss in ("wasserstein", "hinge"):
            terms["wdist"] = losses.wasserstein_estimate(real_out, fake_out)
        if self.gradient_penalty > 0:
            gp = regularizers.gradient_penalty(
                lambda x: s.discriminate(x, y_real), s.real, fake, grad_scale=s.grad_scale,
                generator=s.latent_generator if s.real.device.type == "cpu" else None,
            )
            total = total + self.gradient_penalty * gp
            terms["gp"] = gp.detach()
        if self.drift > 0:
            drift = real_out.square().mean()
            total = total + self.drift * drift
            terms["drift"] = drift.detach()
        if self.r1_gamma > 0 and s.index % self.r1_interval == 0:
            r1 = regularizers.r1_penalty(lambda x: s.discriminate(x, y_real), s.real, grad_scale=s.grad_scale)
            # lazy regularization: scale by the interval so the expected gradient is unchanged
            total = total + 0.5 * self.r1_gamma * self.r1_interval * r1
            terms["r1"] = r1.detach()
        total = self._history_penalty("D", total, terms)
        if len(terms) == 1:
            terms.pop("adv")  # nothing but the adversarial term: "loss" says it all
        terms["loss"] = total
        return terms

    def g_loss(self, s: Step) -> dict[str, Tensor]:
        cached = s.cache.pop("fake", None)
        if cached is not None:
            fake, y = cached
        else:
            y = s.fake_labels()
            fake = s.generate(s.latents(), y)
        terms: dict[str, Tensor] = {}
        if self.feature_matching:
            with torch.no_grad():  # the real side is a constant target
                _, real_features = s.discriminate(s.real, self._conditioning(s), return_features=True)
            out, fake_features = s.discriminate(fake, y, return_features=True)
            total = improved_losses.feature_matching_loss(real_features, fake_features)
            terms["fm"] = total.detach()
            if self.feature_matching_adversarial > 0:
                adv = self._loss.g_loss(self._gan_logit(out))
                terms["adv"] = adv.detach()
                total = total + self.feature_matching_adversarial * adv
        else:
            total = self._loss.g_loss(self._gan_logit(s.discriminate(fake, y)))
        total = self._history_penalty("G", total, terms)
        terms["loss"] = total
        return terms

    def after_d_step(self, s: Step) -> None:
        if self.clip_weights is not None:
            regularizers.clip_weights_(s.D, self.clip_weights)
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
