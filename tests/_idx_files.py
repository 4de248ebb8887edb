"""IDX files (the MNIST format) written on the fly, and where Debian puts Fashion-MNIST."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def write_idx(path: Path, array: np.ndarray) -> Path:
    """Write an IDX file (the MNIST format), gzipped when the name ends in .gz."""
    array = np.ascontiguousarray(array)
    codes = {np.dtype(np.uint8): 0x08}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + array.tobytes()
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)
    return path
