"""The checkpoint format: one self-describing .safetensors file, written atomically.

Tensors: ``G.*`` (generator), ``G_ema.*`` (when EMA is on), ``D.*`` (discriminator),
and ``state.*`` (optimizers, RNG, objective state) for resuming. Metadata (strings
only): the keys in :data:`REQUIRED_KEYS` plus ``gancli.state`` (JSON) in training
checkpoints. Nothing here unpickles anything.
"""
from __future__ import annotations

import json
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from gancli.errors import GancliError

FORMAT_VERSION = "1"
MAX_HEADER_BYTES = 100 * 1024 * 1024  # safetensors' own limit
MAX_METADATA_VALUE_BYTES = 4 * 1024 * 1024
PICKLE_SUFFIXES = {".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin"}
REQUIRED_KEYS = (
    "gancli.format",
    "gancli.version",
    "gancli.family",
    "gancli.plugin.distribution",
    "gancli.plugin.version",
    "gancli.plugin.api_version",
    "gancli.config",
    "gancli.data_spec",
    "gancli.step",
    "gancli.images_seen",
)


# ---------------------------------------------------------------- atomic files


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old file or the new one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_link_or_copy(source: Path, target: Path) -> None:
    """Make ``target`` hold the same bytes as ``source``, atomically (a hard link when possible)."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        if tmp.exists():
            tmp.unlink()
        os.link(source, tmp)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except OSError:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        atomic_write_bytes(target, Path(source).read_bytes())


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------- writing


def save(path: Path, tensors: dict[str, Any], metadata: dict[str, str]) -> None:
    """Serialize tensors + metadata and write them atomically."""
    from safetensors.torch import save as to_bytes

    for key, value in metadata.items():
        if not isinstance(value, str):
            raise TypeError(f"metadata {key!r} must be a string")
    contiguous = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write_bytes(Path(path), to_bytes(contiguous, metadata=metadata))


# ---------------------------------------------------------------- reading


def refuse_pickle(path: Path) -> None:
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise GancliError(
            f"{path.name}: gancli only loads .safetensors files, never pickle-based {path.suffix} files "
            f"(they can run code when loaded); convert weights you trust with safetensors.torch.save_file"
        )


def read_header(path: Path) -> dict[str, Any]:
    """Parse and check a safetensors header without loading any tensor."""
    path = Path(path)
    refuse_pickle(path)
    if not path.exists():
        raise GancliError(f"checkpoint {path} does not exist; check the path")
    if path.is_dir():
        raise GancliError(f"{path} is a folder; pass a .safetensors file (e.g. RUN/checkpoints/last.safetensors)")
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise GancliError(f"{path} is not a safetensors file (too short); it may be truncated")
            (length,) = struct.unpack("<Q", head)
            if length > MAX_HEADER_BYTES or 8 + length > size:
                raise GancliError(f"{path} is not a valid safetensors file (bad header length); it may be truncated or corrupt")
            raw = f.read(length)
    except PermissionError:
        raise GancliError(f"cannot read {path}: permission denied") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise GancliError(f"{path} is not a valid safetensors file (unreadable header); it may be corrupt") from None
    if not isinstance(header, dict):
        raise GancliError(f"{path} is not a valid safetensors file (header is not an object)")
    end = 0
    for key, info in header.items():
        if key == "__metadata__":
            continue
        try:
            end = max(end, int(info["data_offsets"][1]))
        except (TypeError, KeyError, IndexError, ValueError):
            raise GancliError(f"{path} is not a valid safetensors file (bad entry {key!r})") from None
    if 8 + length + end > size:
        raise GancliError(
            f"{path} is truncated ({size} bytes, needs {8 + length + end}); use an earlier checkpoint"
        )
    return header


@dataclass
class Checkpoint:
    path: Path
    metadata: dict[str, str]
    tensor_names: list[str]

    @property
    def family(self) -> str:
        return self.metadata["gancli.family"]

    @property
    def step(self) -> int:
        return int(self.metadata["gancli.step"])

    @property
    def images_seen(self) -> int:
        return int(self.metadata["gancli.images_seen"])

    @property
    def config(self) -> dict[str, Any]:
        return json.loads(self.metadata["gancli.config"])

    @property
    def spec(self):
        from gancli.data.spec import DataSpec

        return DataSpec.from_json(self.metadata["gancli.data_spec"])

    @property
    def state(self) -> dict[str, Any]:
        return json.loads(self.metadata.get("gancli.state", "{}"))

    @property
    def plugin(self) -> str:
        return f"{self.metadata['gancli.plugin.distribution']} {self.metadata['gancli.plugin.version']}"

    def has(self, prefix: str) -> bool:
        return any(name.startswith(prefix) for name in self.tensor_names)

    def tensors(self, prefix: str, device: str = "cpu") -> dict[str, Any]:
        """Tensors whose names start with ``prefix``, with the prefix removed."""
        from safetensors import safe_open

        out = {}
        try:
            with safe_open(str(self.path), framework="pt", device=device) as f:
                for name in f.keys():
                    if name.startswith(prefix):
                        out[name[len(prefix) :]] = f.get_tensor(name)
        except Exception as exc:
            raise GancliError(f"{self.path} is corrupt: {exc}; use an earlier checkpoint") from None
        return out


def read(path: Path | str) -> Checkpoint:
    """Open a gancli checkpoint and validate its metadata; tensors are read on demand."""
    path = Path(path).expanduser()
    header = read_header(path)
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict) or "gancli.format" not in metadata:
        raise GancliError(
            f"{path} is a safetensors file but not a gancli checkpoint (no gancli metadata); "
            f"train with 'gancli train' or pass a file it wrote"
        )
    missing = [k for k in REQUIRED_KEYS if k not in metadata]
    if missing:
        raise GancliError(f"{path} lacks gancli metadata {', '.join(missing)}; the file is damaged or foreign")
    for key, value in metadata.items():
        if not isinstance(value, str) or len(value) > MAX_METADATA_VALUE_BYTES:
            raise GancliError(f"{path}: metadata {key!r} is not a string of at most 4 MiB")
    if metadata["gancli.format"] != FORMAT_VERSION:
        raise GancliError(
            f"{path} uses checkpoint format {metadata['gancli.format']}, this gancli reads {FORMAT_VERSION}; "
            f"upgrade gancli"
        )
    try:
        config = json.loads(metadata["gancli.config"])
        if not isinstance(config, dict):
            raise ValueError("config is not an object")
        int(metadata["gancli.step"]), int(metadata["gancli.images_seen"])
        from gancli.data.spec import DataSpec

        DataSpec.from_json(metadata["gancli.data_spec"])
        json.loads(metadata.get("gancli.state", "{}"))
    except (ValueError, TypeError) as exc:
        raise GancliError(f"{path} has invalid gancli metadata ({exc}); the file is damaged") from None
    names = [k for k in header if k != "__metadata__"]
    return Checkpoint(path=path, metadata=metadata, tensor_names=names)


def generator_prefix(ckpt: Checkpoint, ema: Optional[bool] = None) -> str:
    """``G_ema.`` when present (unless ema=False), else ``G.``."""
    if ema is not False and ckpt.has("G_ema."):
        return "G_ema."
    if ema is True:
        raise GancliError(f"{ckpt.path} has no EMA generator; drop --ema or train with train.ema=true")
    return "G."
