"""Fingerprints of what a data source reads, for its identity in evaluation protocols and for cache keys."""
from __future__ import annotations

import hashlib
from pathlib import Path

# Bump when gancli.data.images changes how files or arrays become uint8 pixels (crop, resize, channels):
# cached reference features depend on it.
LOADER_RESIZE = "gancli-loader/1: square centre crop; arrays: torch bilinear antialiased, rounded; files: PIL Lanczos"
# Folders up to this size are fingerprinted by their bytes; larger ones by file names, sizes and mtimes.
CONTENT_FINGERPRINT_LIMIT_BYTES = 256 << 20


def folder_fingerprint(folder: Path) -> dict:
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    if sum(path.stat().st_size for path in files) <= CONTENT_FINGERPRINT_LIMIT_BYTES:
        return {"fingerprint": files_sha256(files, folder), "fingerprint_of": "file contents", "files": len(files)}
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(folder).as_posix()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return {"fingerprint": digest.hexdigest(), "fingerprint_of": "file names, sizes and modification times",
            "files": len(files)}


def files_sha256(files: list[Path], root: Path) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(root).as_posix()}\n".encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
