"""Turning image batches (uint8 pixels or generator output in [-1, 1]) into float pixel tensors."""
from __future__ import annotations

import numpy as np
import torch


def to_pixels(images) -> torch.Tensor:
    """NCHW float32 pixel values 0..255 on the 8-bit lattice.

    uint8 input is taken as pixels. Floating-point input is generator output in [-1, 1] and is quantised
    with rounding, round((x + 1) · 127.5) clamped to 0..255, so generated images are measured exactly as
    they would be after saving them as PNG, like the real images they are compared with. A 3-D batch
    (N, H, W) is treated as single-channel.
    """
    # np.array copies: the batch may be a read-only view (e.g. np.frombuffer of a dataset file).
    tensor = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.array(images))
    if tensor.dim() == 3:
        tensor = tensor.unsqueeze(1)
    if tensor.dim() != 4:
        raise ValueError(f"images must be NCHW (or NHW for one channel), got shape {tuple(tensor.shape)}")
    if tensor.dtype == torch.uint8:
        return tensor.to(torch.float32)
    if not tensor.is_floating_point():
        raise ValueError(f"images must be uint8 pixels or floats in [-1, 1], got dtype {tensor.dtype}")
    return torch.round((tensor.to(torch.float32) + 1.0) * 127.5).clamp_(0.0, 255.0)


def match_channels(pixels: torch.Tensor, channels: int) -> torch.Tensor:
    """Grey → colour by repeating the channel; colour → grey by averaging (exact for repeated grey)."""
    have = pixels.shape[1]
    if have == channels:
        return pixels
    if have == 1:
        return pixels.expand(-1, channels, -1, -1)
    if channels == 1:
        return pixels.mean(dim=1, keepdim=True)
    raise ValueError(f"cannot turn {have}-channel images into {channels}-channel ones")


def batch_slices(count: int, batch_size: int):
    for start in range(0, count, batch_size):
        yield slice(start, min(start + batch_size, count))
