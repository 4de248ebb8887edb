"""The data side every plain baseline loop shares: a DataLoader over float images, drawn from endlessly."""
from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import DataLoader, TensorDataset


class EndlessImages:
    """Shuffled batches of images in [-1, 1], as the PyTorch examples build them; restarts each epoch."""

    def __init__(self, images_uint8: torch.Tensor, batch_size: int) -> None:
        dataset = TensorDataset(images_uint8.float() / 127.5 - 1.0)
        self.loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True)
        self._batches: Iterator = iter(())

    def next(self) -> torch.Tensor:
        try:
            return next(self._batches)[0]
        except StopIteration:
            self._batches = iter(self.loader)
            return next(self._batches)[0]
