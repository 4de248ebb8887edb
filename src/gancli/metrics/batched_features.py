"""Features of many images, batch by batch, in full float32 (TF32 off on CUDA), for every extractor."""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np


def run_in_batches(forward, images, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate `forward(batch) -> (features, logits)` over slices of `images`, as float32 numpy."""
    import torch

    from gancli.metrics.image_batches import batch_slices

    features, logits = [], []
    with torch.inference_mode(), full_float32_precision():
        for rows in batch_slices(len(images), batch_size):
            batch_features, batch_logits = forward(images[rows])
            features.append(batch_features.float().cpu().numpy())
            logits.append(batch_logits.float().cpu().numpy())
    if not features:
        raise ValueError("no images to extract features from")
    return np.concatenate(features), np.concatenate(logits)


@contextmanager
def full_float32_precision():
    """TF32 off for CUDA matmuls and cuDNN convolutions inside the block; the previous settings after it."""
    import torch

    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
