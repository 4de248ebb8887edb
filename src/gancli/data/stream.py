"""An endless, resumable stream of training batches.

The order is a pure function of (seed, images consumed): epoch ``e`` visits the
dataset in ``randperm(N, seed + e)``. Resuming needs only the count of images
consumed, so no sampler or loader state is pickled. With several processes each
global batch is split between them by rank. The global batch may change from one
call to the next (a family whose batch follows its growth phases).

In-memory datasets are indexed directly (on the GPU when the data is small enough to
live there, kept as uint8); lazy ones (image folders, hub datasets) are decoded in
DataLoader workers whose random state is seeded from (seed, images consumed), never
from the global generator, so a resumed run continues exactly.
"""
from __future__ import annotations

import os
from typing import Iterator, Optional

import torch
from torch import Tensor

from gancli.data.images import TensorData, to_float
from gancli.randomness import mix_seed

DEVICE_RESIDENT_LIMIT_BYTES = 2 << 30  # in-memory uint8 data up to 2 GiB moves to the GPU once


def default_workers(data) -> int:
    """Decoding workers for a lazily loaded dataset: half the cores, at most 8; none for in-memory data."""
    if getattr(data, "in_memory", True):
        return 0
    return max(1, min(8, (os.cpu_count() or 2) // 2))


def _seed_worker(worker_id: int) -> None:
    # every worker derives its seeds from the loader's base seed (set from the run's seed and
    # position), so random decoding or augmentation repeats exactly after a resume
    info = torch.utils.data.get_worker_info()
    seed = info.seed % (1 << 32) if info is not None else worker_id
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)


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
        self._lazy_batch = 0
        self._values = self._resident_values()

    def _resident_values(self) -> Optional[Tensor]:
        if not isinstance(self.data, TensorData):
            return None
        values = self.data.values
        if self.device.type != "cpu" and values.dtype == torch.uint8 and values.numel() <= DEVICE_RESIDENT_LIMIT_BYTES:
            return values.to(self.device)
        return values

    @property
    def is_points(self) -> bool:
        return self.data.spec.kind == "points"

    def _permutation(self, epoch: int) -> Tensor:
        if epoch != self._perm_epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(len(self.data), generator=g)
            self._perm_epoch = epoch
        return self._perm

    def _global_indices(self, start: int, global_batch: int) -> Tensor:
        n = len(self.data)
        out, pos, need = [], start, global_batch
        while need:
            epoch, offset = divmod(pos, n)
            take = min(need, n - offset)
            out.append(self._permutation(epoch)[offset : offset + take])
            pos += take
            need -= take
        return torch.cat(out)

    def indices_at(self, position: int, global_batch: Optional[int] = None) -> Tensor:
        """This process's share of the global batch that starts at image ``position``."""
        global_batch = global_batch or self.global_batch
        indices = self._global_indices(position, global_batch)
        per = global_batch // self.world_size
        return indices[self.rank * per : (self.rank + 1) * per]

    def next(self, global_batch: Optional[int] = None) -> tuple[Tensor, Optional[Tensor]]:
        """The next (x, y) for this process: images float in [-1, 1] or points; y None if unlabelled."""
        global_batch = global_batch or self.global_batch
        if global_batch % self.world_size:
            raise ValueError(f"batch size {global_batch} is not divisible by {self.world_size} processes")
        if self._values is not None:
            indices = self.indices_at(self.consumed, global_batch)
            labels = self.data.labels[indices] if self.data.labels is not None else None
            values = self._values[indices.to(self._values.device)]
        else:
            values, labels = self._next_lazy(global_batch)
        self.consumed += global_batch
        values = values.to(self.device, non_blocking=True)
        if self.is_points:
            x = values.float()
        else:
            if self.channels_last and values.dim() == 4:
                values = values.contiguous(memory_format=torch.channels_last)
            x = to_float(values)
        if labels is not None:
            labels = labels.to(self.device, non_blocking=True)
        return x, labels

    def close(self) -> None:
        """Stop the decoding workers (they would otherwise live until the stream is garbage collected)."""
        iterator, self._lazy_iter = self._lazy_iter, None
        shutdown = getattr(iterator, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()

    def _next_lazy(self, global_batch: int) -> tuple[Tensor, Optional[Tensor]]:
        if self._lazy_iter is None or self._lazy_batch != global_batch:
            # (re)start the loader at the current position, e.g. when the batch size changes
            self.close()
            self._lazy_iter = iter(self._loader(global_batch))
            self._lazy_batch = global_batch
        images, labels = next(self._lazy_iter)
        return images, (labels if getattr(self.data, "has_labels", False) else None)

    def _loader(self, global_batch: int):
        stream, start = self, self.consumed

        class IndexBatches(torch.utils.data.Sampler):
            # runs ahead of training by the loader's prefetch, so it keeps its own position
            def __iter__(self):
                position = start
                while True:
                    yield stream.indices_at(position, global_batch).tolist()
                    position += global_batch

        return torch.utils.data.DataLoader(
            self.data,
            batch_sampler=IndexBatches(),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=self.device.type == "cuda",
            worker_init_fn=_seed_worker if self.num_workers > 0 else None,
            generator=torch.Generator().manual_seed(mix_seed(self.seed, self.rank, start)),
        )
