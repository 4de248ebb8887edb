"""An endless, resumable stream of training batches.

The order is a pure function of (seed, images consumed): epoch ``e`` visits the
dataset in ``randperm(N, seed + e)``. Resuming needs only the count of images
consumed, so no sampler or loader state is pickled. With several processes each
global batch is split between them by rank.
"""
from __future__ import annotations

from typing import Iterator, Optional

import torch
from torch import Tensor

from gancli.data.images import TensorData, to_float


class BatchStream:
    def __init__(
        self,
        data,
        *,
        global_batch: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        device: torch.device | str = "cpu",
        num_workers: int = 0,
        consumed: int = 0,
        channels_last: bool = False,
    ) -> None:
        if global_batch % world_size:
            raise ValueError(f"batch size {global_batch} is not divisible by {world_size} processes")
        self.data = data
        self.global_batch = global_batch
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.device = torch.device(device)
        self.num_workers = num_workers
        self.consumed = consumed
        self.channels_last = channels_last
        self._perm_epoch = -1
        self._perm: Optional[Tensor] = None
        self._lazy_iter: Optional[Iterator] = None

    @property
    def is_points(self) -> bool:
        return self.data.spec.kind == "points"

    def _permutation(self, epoch: int) -> Tensor:
        if epoch != self._perm_epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(len(self.data), generator=g)
            self._perm_epoch = epoch
        return self._perm

    def _global_indices(self, start: int) -> Tensor:
        n = len(self.data)
        out, pos, need = [], start, self.global_batch
        while need:
            epoch, offset = divmod(pos, n)
            take = min(need, n - offset)
            out.append(self._permutation(epoch)[offset : offset + take])
            pos += take
            need -= take
        return torch.cat(out)

    def indices_at(self, position: int) -> Tensor:
        """This process's share of the global batch that starts at image ``position``."""
        indices = self._global_indices(position)
        per = self.global_batch // self.world_size
        return indices[self.rank * per : (self.rank + 1) * per]

    def next(self) -> tuple[Tensor, Optional[Tensor]]:
        """The next (x, y) for this process: images float in [-1, 1] or points; y None if unlabelled."""
        if isinstance(self.data, TensorData):
            values, labels = self.data.fetch(self.indices_at(self.consumed))
        else:
            values, labels = self._next_lazy()
        self.consumed += self.global_batch
        values = values.to(self.device, non_blocking=True)
        x = values.float() if self.is_points else to_float(values)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        if labels is not None:
            labels = labels.to(self.device, non_blocking=True)
        return x, labels

    def _next_lazy(self) -> tuple[Tensor, Optional[Tensor]]:
        if self._lazy_iter is None:
            self._lazy_iter = iter(self._loader())
        images, labels = next(self._lazy_iter)
        return images, (labels if getattr(self.data, "has_labels", False) else None)

    def _loader(self):
        stream, start = self, self.consumed

        class IndexBatches(torch.utils.data.Sampler):
            # runs ahead of training by the loader's prefetch, so it keeps its own position
            def __iter__(self):
                position = start
                while True:
                    yield stream.indices_at(position).tolist()
                    position += stream.global_batch

        return torch.utils.data.DataLoader(
            self.data,
            batch_sampler=IndexBatches(),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=self.device.type == "cuda",
        )
