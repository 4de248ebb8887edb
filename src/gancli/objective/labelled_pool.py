"""A ring buffer of labelled real examples, to draw labelled batches from (the semi-supervised GAN)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


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
