"""An iteration's passes: a :class:`Phase` trains one network with its own loss, interval and repeats."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Optional, Sequence

from torch import Tensor

from gancli.objective.step import Step

Network = Literal["G", "D"]
RealBatch = Literal["new", "last", "none"]


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
