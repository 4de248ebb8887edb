"""What a phase's loss sees: the iteration's :class:`Progress` and one micro-batch's :class:`Step`."""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Optional

import torch
from torch import Tensor, nn

from gancli.randomness import mix_seed


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
        backward: Optional[Callable[[Tensor], None]] = None,
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
        self._backward = backward

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

    def backward_now(self, part: Tensor) -> Tensor:
        """Backpropagate ``part`` of this phase's loss at once, so its graph is freed before the rest of
        the loss is computed (stylegan2-ada-pytorch backpropagates its Dgen and Dreal terms one after
        the other). Add what this returns to the phase's "loss": ``part`` detached once it has been
        backpropagated (the loss then has the whole value, and gradients flow from the rest only),
        or ``part`` itself where no trainer backpropagates (a Step built by hand). The gradients are
        the same sum as one backward of the whole loss, up to floating-point rounding."""
        if self._backward is None:
            return part
        self._backward(part)
        return part.detach()

    def mean_across_processes(self, value: Tensor) -> Tensor:
        """The mean of ``value`` over all processes (itself with one process); not differentiable."""
        if self._reduce_mean is None or self.world_size == 1:
            return value
        return self._reduce_mean(value)
