"""What a family's ``build`` returns, and how the trainer drives it (plugin API 2).

A :class:`GAN` bundles a generator, a discriminator and an :class:`Objective`. The
trainer owns the loop (data, devices, precision, gradient synchronisation, EMA,
checkpoints); the objective describes one training iteration as a list of
:class:`Phase` objects, the way stylegan2-ada's loop runs Gmain/Greg/Dmain/Dreg:

* each phase trains one network ("G" or "D") with its own loss function, runs at
  iterations where ``step % interval == 0`` and ``repeats(step)`` times when it runs
  (a D-step schedule); every repeat is one optimizer step over ``train.accumulate``
  micro-batches, with a fresh real batch, the last one, or none;
* the hooks: ``optimizers(G, D)``, ``grow(progress, G, D)`` (networks that gain layers),
  ``begin_step(progress, G, D)`` (schedules: learning rates, fade-in α), ``batch_size(progress)``
  (a batch that follows a schedule), ``after_backward(phase, module)`` (between backward and
  the optimizer step: clipping, ``nan_to_num``), a phase's ``after_step`` (weight clipping,
  running averages), ``before_sampling(generator, is_ema=...)`` (standing statistics), and
  ``state_tensors``/``load_state_tensors`` (objective state, saved per process).

:class:`AdversarialObjective` is the configurable objective most families use as it is:
one adversarial loss plus optional regularizers and the Improved-GAN techniques.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Literal, Optional, Sequence

import torch
from torch import Tensor, nn

from gancli import improved_losses, losses, regularizers
from gancli.errors import GancliError
from gancli.randomness import mix_seed

Network = Literal["G", "D"]
RealBatch = Literal["new", "last", "none"]


@dataclass(frozen=True)
class Progress:
    """Where training stands at the start of an iteration."""

    step: int  # generator updates done so far (the iteration's index)
    images_seen: int  # real images drawn so far, over all processes

    @property
    def kimg(self) -> float:
        return self.images_seen / 1000.0


class Step:
    """One micro-batch of one phase of one training iteration, as the objective sees it.

    ``G`` and ``D`` are the plain modules (the trainer synchronises gradients itself, so
    calls into sub-modules such as ``G.mapping`` need no wrapper). ``real``/``labels`` are
    this micro-batch's share of the real batch on this process, images in [-1, 1]
    (``real`` is None in phases that draw no real batch).

    Random draws (:meth:`randn`, :meth:`rand`, :meth:`randint`, :meth:`latents`,
    :meth:`fake_labels`) are counter-based: the n-th draw of a micro-batch is a slice of one
    draw for the whole global batch, seeded by (run seed, step, phase, repeat, n). A run on
    several processes or with gradient accumulation therefore sees the same numbers as
    one process with the whole batch, and resuming continues them exactly.
    """

    def __init__(
        self,
        *,
        index: int,
        real: Optional[Tensor],
        labels: Optional[Tensor],
        G: nn.Module,
        D: nn.Module,
        z_dim: int,
        num_classes: int,
        seed: int = 0,
        phase: str = "D",
        phase_index: int = 0,
        repeat: int = 0,
        repeats: int = 1,
        micro: int = 0,
        accumulate: int = 1,
        rank: int = 0,
        world_size: int = 1,
        images_seen: int = 0,
        batch_size: Optional[int] = None,
        device: Optional[torch.device] = None,
        autocast: Callable[[], ContextManager] = nullcontext,
        generator: Optional[torch.Generator] = None,
        cache: Optional[dict[str, Any]] = None,
        reduce_mean: Optional[Callable[[Tensor], Tensor]] = None,
        augment: Optional[Callable[[Tensor, "Step"], Tensor]] = None,
        observe_real: Optional[Callable[[Tensor], None]] = None,
    ) -> None:
        if real is None and (batch_size is None or device is None):
            raise ValueError("a Step without a real batch needs batch_size and device")
        self.index = index
        self.real = real
        self.labels = labels
        self.G = G
        self.D = D
        self.z_dim = z_dim
        self.num_classes = num_classes
        self.seed = seed
        self.phase = phase
        self.phase_index = phase_index
        self.repeat = repeat
        self.repeats = repeats
        self.micro = micro
        self.accumulate = accumulate
        self.rank = rank
        self.world_size = world_size
        self.images_seen = images_seen
        self._batch_size = batch_size if batch_size is not None else real.shape[0]
        self._device = torch.device(device) if device is not None else real.device
        self.autocast = autocast
        self._generator = generator
        self._calls = 0
        self.cache: dict[str, Any] = cache if cache is not None else {}
        self._reduce_mean = reduce_mean
        self._augment = augment
        self._observe_real = observe_real

    @property
    def batch_size(self) -> int:
        """Examples in this micro-batch on this process."""
        return self._batch_size

    @property
    def device(self) -> torch.device:
        return self._device

    # ------------------------------------------------------------ randomness

    def _draw(self, kind: str, shape: tuple[int, ...], n: Optional[int], high: int = 0) -> Tensor:
        n = self.batch_size if n is None else int(n)
        total = n * self.world_size * self.accumulate
        if self._generator is None or self._generator.device != self.device:
            self._generator = torch.Generator(device=self.device)
        g = self._generator
        g.manual_seed(mix_seed(self.seed, self.index, self.phase_index, self.repeat, self._calls))
        self._calls += 1
        size = (total, *shape)
        if kind == "randn":
            values = torch.randn(size, generator=g, device=self.device)
        elif kind == "rand":
            values = torch.rand(size, generator=g, device=self.device)
        else:
            values = torch.randint(0, high, size, generator=g, device=self.device)
        offset = (self.rank * self.accumulate + self.micro) * n
        return values[offset : offset + n]

    def randn(self, *shape: int, n: Optional[int] = None) -> Tensor:
        """Standard normal values of shape (n, *shape); n defaults to the micro-batch size."""
        return self._draw("randn", tuple(shape), n)

    def rand(self, *shape: int, n: Optional[int] = None) -> Tensor:
        """U[0, 1) values of shape (n, *shape)."""
        return self._draw("rand", tuple(shape), n)

    def randint(self, high: int, *shape: int, n: Optional[int] = None) -> Tensor:
        """Integers in [0, high) of shape (n, *shape)."""
        return self._draw("randint", tuple(shape), n, high=int(high))

    def latents(self, n: Optional[int] = None) -> Tensor:
        return self.randn(self.z_dim, n=n)

    def fake_labels(self, n: Optional[int] = None) -> Optional[Tensor]:
        """Classes for generated samples: uniform over the classes, None if unconditional."""
        if self.num_classes <= 0:
            return None
        return self.randint(self.num_classes, n=n)

    # ------------------------------------------------------------ networks

    def generate(self, z: Tensor, y: Optional[Tensor] = None, **kwargs: Any) -> Tensor:
        with self.autocast():
            return self.G(z, y, **kwargs)

    def discriminate(self, x: Tensor, y: Optional[Tensor] = None, *, fp32: bool = False, **kwargs: Any) -> Any:
        """D's output in float32. ``fp32=True`` runs D itself in full precision (penalties).

        With ``train.augment`` every image D sees here, real or generated, R1's input included,
        is augmented first (differentiably: G's gradient and R1's input gradient pass through).
        D's scores on this micro-batch's reals (``real`` itself, or a copy sharing its storage, as
        the penalties make) feed ADA's statistic.
        """
        scores_reals = self.real is not None and x.shape == self.real.shape and x.data_ptr() == self.real.data_ptr()
        context = torch.autocast(self.device.type, enabled=False) if fp32 else self.autocast()
        with context:
            x = x.float() if fp32 else x
            if self._augment is not None:
                x = self._augment(x, self)
            out = self.D(x, y, **kwargs)
        if isinstance(out, tuple):
            out = tuple(o.float() for o in out)
        else:
            out = out.float()
        if scores_reals and self._observe_real is not None:
            self._observe_real(out[0] if isinstance(out, tuple) else out)
        return out

    def critic(self, y: Optional[Tensor] = None) -> Callable[[Tensor], Tensor]:
        """D as a full-precision function of its input, for gradient penalties (gancli.regularizers)."""
        return lambda x: self.discriminate(x, y, fp32=True)

    def mean_across_processes(self, value: Tensor) -> Tensor:
        """The mean of ``value`` over all processes (itself with one process); not differentiable."""
        if self._reduce_mean is None or self.world_size == 1:
            return value
        return self._reduce_mean(value)


@dataclass(frozen=True)
class Phase:
    """One pass of an iteration: a loss for one network and its optimizer step.

    ``loss(step) -> dict`` returns named scalar terms; the trainer back-propagates
    ``"loss"`` (divided by the number of micro-batches) and logs the others under
    ``<name lower-cased>/<term>``. ``real``: "new" draws a fresh real batch for each repeat,
    "last" reuses the iteration's last one (a lazy regularizer on the reals D just saw),
    "none" draws none. While a G phase runs, D is frozen (its weight gradients are never
    needed there); in D phases G keeps ``requires_grad`` so that an objective may keep a
    generator graph for a later G phase, and G's gradients are cleared before each G phase.
    """

    name: str
    network: Network
    loss: Callable[[Step], dict[str, Tensor]]
    interval: int = 1
    repeats: Optional[Callable[[int], int]] = None
    real: RealBatch = "new"
    after_step: Optional[Callable[[Step], None]] = None

    def due(self, step: int) -> bool:
        return step % self.interval == 0

    def times(self, step: int) -> int:
        return 1 if self.repeats is None else int(self.repeats(step))

    @property
    def log_prefix(self) -> str:
        return self.name.lower()


def check_phases(phases: Sequence[Phase]) -> list[Phase]:
    """Validate an objective's phases; returns them as a list (raises ValueError)."""
    phases = list(phases)
    if not phases:
        raise ValueError("an objective needs at least one phase")
    names = [p.name for p in phases]
    if len(set(names)) != len(names):
        raise ValueError(f"phase names must be unique, got {names}")
    for p in phases:
        if not isinstance(p, Phase):
            raise ValueError(f"phases() must return gancli.objective.Phase objects, got {type(p).__name__}")
        if p.network not in ("G", "D"):
            raise ValueError(f"phase {p.name!r}: network must be 'G' or 'D', got {p.network!r}")
        if p.interval < 1:
            raise ValueError(f"phase {p.name!r}: interval must be at least 1, got {p.interval}")
        if p.real not in ("new", "last", "none"):
            raise ValueError(f"phase {p.name!r}: real must be 'new', 'last' or 'none', got {p.real!r}")
    if phases[0].real == "last":
        raise ValueError(f"phase {phases[0].name!r} is first and cannot reuse the last real batch")
    return phases


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


@dataclass
class OptimizerSettings:
    name: str = "adam"  # adam | rmsprop
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    eps: float = 1e-8


def lazy_regularization(lr: float, betas: tuple[float, float], interval: int) -> tuple[float, tuple[float, float]]:
    """Adam settings for a network regularized every ``interval`` steps (Karras et al. 2020, app. B):
    lr × c and β ** c with c = k / (k + 1), so the main and regularization steps together
    behave like one step of the original settings."""
    if interval <= 1:
        return lr, tuple(betas)
    c = interval / (interval + 1)
    return lr * c, (betas[0] ** c, betas[1] ** c)


def linear_lr_decay(optimizers, step: int, decay_steps: int, start: int = 0) -> None:
    """Every param group's learning rate at ``step`` of a linear decay that holds the starting rate
    until ``start`` and reaches 0 at step ``decay_steps`` (start 0: the WGAN-GP CIFAR ResNet and SNGAN
    schedules; ``start`` < ``decay_steps``, which AdversarialObjective checks when it is built). Each
    group keeps its starting rate as ``initial_lr``, so the schedule is a function of the step and a
    resumed run continues it."""
    factor = min(1.0, max(0.0, (decay_steps - step) / (decay_steps - start))) if decay_steps else 1.0
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["lr"] = group.setdefault("initial_lr", group["lr"]) * factor


def make_optimizer(params, settings: OptimizerSettings, lr: float,
                   betas: Optional[tuple[float, float]] = None) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    if settings.name == "adam":
        # foreach is the fast multi-tensor path on every device
        return torch.optim.Adam(params, lr=lr, betas=tuple(betas or settings.betas), eps=settings.eps, foreach=True)
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

    def take(self, index: Tensor) -> tuple[Tensor, Tensor]:
        """The examples at ``index`` (integers in [0, size)); the pool must not be empty."""
        assert self.x is not None and self.y is not None and self.size > 0
        index = index.to(self.x.device)
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

    Improved-GAN techniques (Salimans et al. 2016), usable by any family, all off by default:

    * ``feature_matching``: G minimizes ‖E f(x) − E f(G(z))‖² over the features the
      discriminator returns with ``D(x, y, return_features=True) -> (output, features)``,
      plus ``feature_matching_adversarial`` × the usual adversarial G loss (0: the paper's pure form).
      ``feature_matching_target``: "independent" takes E f(x) on a fresh real batch, as
      openai/improved-gan does; "same_batch" on the batch D was just trained on.
    * ``historical_averaging`` λ: adds λ·‖θ − mean of past θ‖² to the G and D losses; the
      running means are objective state, saved with resume checkpoints.
    * ``real_label`` < 1: one-sided label smoothing (fake targets stay 0).
    * ``lr_decay_steps`` n > 0: both learning rates fall linearly to 0 at G step n, starting from
      step ``lr_decay_start`` (default 0: over the whole run).
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
    feature_matching_target: Literal["independent", "same_batch"] = "independent"
    historical_averaging: float = 0.0
    semi_supervised: bool = False
    unsupervised_weight: float = 1.0
    supervised_batch: int = 0
    supervised_pool: int = 2048
    lr_decay_steps: int = 0
    lr_decay_start: int = 0

    def __post_init__(self) -> None:
        self._loss = losses.get_loss(self.loss)
        if self.lr_decay_steps and self.lr_decay_start >= self.lr_decay_steps:
            raise ValueError(f"lr_decay_start ({self.lr_decay_start}) must be below lr_decay_steps ({self.lr_decay_steps})")
        if self.real_label != 1.0 and not self._loss.supports_label_smoothing:
            raise ValueError(f"label smoothing does not apply to the {self.loss} loss")
        if self.semi_supervised and self.loss not in ("minimax", "nonsaturating"):
            raise ValueError(f"the semi-supervised discriminator needs a logistic loss, not {self.loss}")
        if self.feature_matching_target not in ("independent", "same_batch"):
            raise ValueError(f"feature_matching_target must be independent or same_batch, got {self.feature_matching_target!r}")
        self._history: Optional[dict[str, improved_losses.HistoricalAverage]] = None
        self._optimizers: tuple = ()
        self._pending_history: Optional[dict[str, Tensor]] = None
        self._labelled = LabelledPool(self.supervised_pool) if self.semi_supervised and self.supervised_batch else None

    @property
    def lazy_r1(self) -> bool:
        return self.r1_gamma > 0 and self.r1_interval > 1

    def phases(self) -> Sequence[Phase]:
        phases = [Phase("D", "D", self.d_loss, repeats=self.d_steps, after_step=self.after_d_step)]
        if self.lazy_r1:
            phases.append(Phase("Dreg", "D", self.d_regularization, interval=self.r1_interval, real="last"))
        g_real = "new" if self.feature_matching and self.feature_matching_target == "independent" else "none"
        phases.append(Phase("G", "G", self.g_loss, real=g_real, after_step=self.after_g_step))
        return phases

    def optimizers(self, G, D):
        if self.historical_averaging > 0:
            # the averages start from the initial weights; a resume replaces them right after
            self._history = {"G": improved_losses.HistoricalAverage(G), "D": improved_losses.HistoricalAverage(D)}
            if self._pending_history is not None:
                self._load_history(self._pending_history)
                self._pending_history = None
        s = self.optimizer
        lr_d, betas_d = lazy_regularization(s.lr_d, s.betas, self.r1_interval if self.lazy_r1 else 1)
        self._optimizers = (make_optimizer(G.parameters(), s, s.lr_g), make_optimizer(D.parameters(), s, lr_d, betas_d))
        return self._optimizers

    def begin_step(self, progress: Progress, G: nn.Module, D: nn.Module) -> None:
        if self.lr_decay_steps:
            linear_lr_decay(self._optimizers, progress.step, self.lr_decay_steps, self.lr_decay_start)

    def _conditioning(self, s: Step) -> Optional[Tensor]:
        """The labels D is conditioned on: none for a semi-supervised D, whose labels are targets."""
        if self.semi_supervised:
            return None
        if s.num_classes > 0 and s.labels is not None and bool((s.labels < 0).any()):
            # data.labeled leaves examples unlabelled (-1); a class-conditional D cannot score them
            raise GancliError(
                "a class-conditional model needs every real example labelled, but data.labeled left some "
                "unlabelled; drop data.labeled or train unconditionally with --set conditional=false"
            )
        return s.labels

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

    def _fake_labels_for_d(self, s: Step) -> Optional[Tensor]:
        if self.gradient_penalty > 0 and s.num_classes > 0 and s.labels is not None and not self.semi_supervised:
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
        adv = self._loss.d_loss(self._gan_logit(real_out), self._gan_logit(fake_out), self.real_label)
        terms: dict[str, Tensor] = {"adv": adv.detach()}
        total = adv
        if self.feature_matching and self.feature_matching_target == "same_batch":
            s.cache["real"] = (s.real, s.labels)
        if self._labelled is not None:
            self._labelled.add(s.real, s.labels)
            supervised = real_out.new_zeros(())
            if self._labelled.size:
                index = s.randint(self._labelled.size, n=self.supervised_batch)
                x_labelled, y_labelled = self._labelled.take(index)
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
        total = self._history_penalty("D", total, terms)
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
        if self.feature_matching:
            if self.feature_matching_target == "same_batch" and "real" in s.cache:
                real, labels = s.cache["real"]
            else:
                real, labels = s.real, s.labels
            with torch.no_grad():  # the real side is a constant target
                _, real_features = s.discriminate(real, None if self.semi_supervised else labels, return_features=True)
            out, fake_features = s.discriminate(fake, y, return_features=True)
            total = improved_losses.feature_matching_loss(
                real_features, fake_features, mean_over_processes=s.mean_across_processes)
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
