"""Small file helpers shared by the metrics package: atomic writes, hashes, cache folder."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path


def default_cache_dir() -> Path:
    """`$GANCLI_CACHE_DIR`, else `$XDG_CACHE_HOME/gancli`, else `~/.cache/gancli`."""
    explicit = os.environ.get("GANCLI_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "gancli"


def sha256_of_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_of_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_bytes_atomically(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` so that `path` is either the old file or the complete new one, never a torn write."""
    from gancli.checkpoint import atomic_write_bytes

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(target, data)
    return target
