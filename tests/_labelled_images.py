"""Tiny labelled images the evaluation and classifier tests learn from."""
from __future__ import annotations

import numpy as np


def quadrant_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Grey 16×16 images whose class (0-3) is the quadrant holding a bright square, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    images = rng.integers(0, 60, size=(n, 16, 16)).astype(np.uint8)
    for index, label in enumerate(labels):
        top, left = 8 * (label // 2), 8 * (label % 2)
        images[index, top + 2 : top + 6, left + 2 : left + 6] = 250
    return images, labels
