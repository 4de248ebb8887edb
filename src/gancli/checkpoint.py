"""The checkpoint format: one self-describing .safetensors file, written atomically.

Tensors: ``G.*`` (generator), ``G_ema.*`` (when EMA is on), ``D.*`` (discriminator),
and ``state.*`` (optimizers, RNG, objective state) for resuming. Metadata (strings
only): the keys in :data:`REQUIRED_KEYS` plus ``gancli.state`` (JSON) in training
checkpoints. Nothing here unpickles anything.
"""
from __future__ import annotations

import functools
import json
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from gancli.errors import GancliError

FORMAT_VERSION = "2"  # 2: optimizer state by parameter name, per-process state (plugin API 2)
READABLE_FORMATS = ("1", "2")  # format 1 files sample, evaluate and export; only format 2 resumes
MAX_HEADER_BYTES = 100 * 1024 * 1024  # safetensors' own limit
MAX_METADATA_VALUE_BYTES = 4 * 1024 * 1024
MAX_METADATA_BYTES = 16 * 1024 * 1024  # all metadata strings together
MAX_JSON_DEPTH = 64  # configs are a few levels deep; deeper JSON is hostile or broken
PICKLE_SUFFIXES = {".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin"}
CONVERT_HINT = (
    "to use weights you trust, load them yourself with torch.load(path, weights_only=True) and save them "
    "with safetensors.torch.save_file (see the Safety section of the README)"
)
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
            _chmod_default(f.fileno())
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


def _chmod_default(fd: int) -> None:
    # mkstemp makes 0600 files; give the file the mode open() would (0666 minus the umask)
    if not hasattr(os, "fchmod"):
        return
    try:
        os.fchmod(fd, 0o666 & ~_umask())
    except OSError:
        pass


@functools.lru_cache(maxsize=1)
def _umask() -> int:
    try:  # read it without changing it (os.umask sets it for every thread)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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
            f"{path.name}: gancli only loads .safetensors checkpoints, never pickle-based {path.suffix} files "
            f"(loading those can run any code); {CONVERT_HINT}"
        )


def _pickle_like(head: bytes) -> str:
    """What a file that claims to be safetensors really is, judged by its first bytes ('' if unknown)."""
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive (PyTorch's torch.save format, which holds a pickle)"
    if len(head) >= 2 and head[0] == 0x80 and head[1] <= 5:
        return "a pickle"
    return ""


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
                raise GancliError(f"{path} is not a safetensors file (only {size} bytes); it may be truncated")
            if kind := _pickle_like(head):
                raise GancliError(
                    f"{path} is {kind}, not safetensors; gancli never unpickles files; {CONVERT_HINT}"
                )
            (length,) = struct.unpack("<Q", head)
            if length > MAX_HEADER_BYTES:
                raise GancliError(
                    f"{path} is not a valid safetensors file (header of {length} bytes, the limit is "
                    f"{MAX_HEADER_BYTES}); the file is corrupt or hostile"
                )
            if length < 2 or 8 + length > size:
                raise GancliError(
                    f"{path} is not a valid safetensors file (header length {length} for {size} bytes); "
                    f"it may be truncated or corrupt"
                )
            raw = f.read(length)
    except PermissionError:
        raise GancliError(f"cannot read {path}: permission denied") from None
    except IsADirectoryError:
        raise GancliError(f"{path} is a folder; pass a .safetensors file") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise GancliError(f"{path} is not a valid safetensors file (unreadable header); it may be corrupt") from None
    if not isinstance(header, dict):
        raise GancliError(f"{path} is not a valid safetensors file (header is not an object)")
    end = 0
    for key, info in header.items():
        if key == "__metadata__":
            continue
        try:
            begin, stop = (int(v) for v in info["data_offsets"])
            if not 0 <= begin <= stop:
                raise ValueError
            end = max(end, stop)
        except (TypeError, KeyError, IndexError, ValueError):
            raise GancliError(f"{path} is not a valid safetensors file (bad entry {key!r})") from None
    if 8 + length + end > size:
        raise GancliError(
            f"{path} is truncated ({size} bytes, needs {8 + length + end}); use an earlier checkpoint"
        )
    return header


def json_depth(value: Any, depth: int = 0) -> int:
    if depth > MAX_JSON_DEPTH:
        return depth
    if isinstance(value, dict):
        return max((json_depth(v, depth + 1) for v in value.values()), default=depth + 1)
    if isinstance(value, list):
        return max((json_depth(v, depth + 1) for v in value), default=depth + 1)
    return depth


def _json_object(path: Path, key: str, text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise GancliError(f"{path}: metadata {key!r} is not valid JSON; the file is damaged") from None
    if not isinstance(value, dict):
        raise GancliError(f"{path}: metadata {key!r} must be a JSON object, got {type(value).__name__}")
    if json_depth(value) > MAX_JSON_DEPTH:
        raise GancliError(f"{path}: metadata {key!r} is nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def validate_metadata(path: Path, metadata: Any) -> dict[str, str]:
    """Check a checkpoint's metadata: types, sizes and the JSON inside; returns it."""
    if not isinstance(metadata, dict) or "gancli.format" not in metadata:
        raise GancliError(
            f"{path} is a safetensors file but not a gancli checkpoint (no gancli metadata); "
            f"pass a file that 'gancli train' or 'gancli export' wrote"
        )
    total = 0
    for key, value in metadata.items():
        if not isinstance(value, str):
            raise GancliError(
                f"{path}: metadata {key!r} is a {type(value).__name__}, not a string; the file is damaged or foreign"
            )
        size = len(value.encode("utf-8", "surrogatepass"))
        total += size + len(key)
        if size > MAX_METADATA_VALUE_BYTES:
            raise GancliError(f"{path}: metadata {key!r} is {size} bytes, more than the 4 MiB allowed")
    if total > MAX_METADATA_BYTES:
        raise GancliError(f"{path}: its metadata is {total} bytes, more than the 16 MiB allowed")
    missing = [k for k in REQUIRED_KEYS if k not in metadata]
    if missing:
        raise GancliError(f"{path} lacks gancli metadata {', '.join(missing)}; the file is damaged or foreign")
    if metadata["gancli.format"] not in READABLE_FORMATS:
        raise GancliError(
            f"{path} uses checkpoint format {metadata['gancli.format'][:20]!r}, this gancli reads "
            f"{', '.join(READABLE_FORMATS)}; upgrade gancli"
        )
    for key in ("gancli.step", "gancli.images_seen"):
        text = metadata[key]
        if not (text.isascii() and text.isdigit() and len(text) <= 18):
            raise GancliError(f"{path}: metadata {key!r} must be a non-negative integer, got {text[:40]!r}")
    config = _json_object(path, "gancli.config", metadata["gancli.config"])
    for section in ("data", "train", "model"):
        if not isinstance(config.get(section, {}), dict):
            raise GancliError(f"{path}: metadata 'gancli.config' has a {section!r} that is not an object")
    if not isinstance(config.get("family", metadata["gancli.family"]), str):
        raise GancliError(f"{path}: metadata 'gancli.config' has a family that is not a string")
    spec = _json_object(path, "gancli.data_spec", metadata["gancli.data_spec"])
    if spec.get("kind") not in ("image", "points"):
        raise GancliError(f"{path}: metadata 'gancli.data_spec' has kind {spec.get('kind')!r}, not image or points")
    for key in ("channels", "resolution", "num_classes", "dim"):
        value = spec.get(key, 0)
        if type(value) is not int or not 0 <= value <= 1 << 20:
            raise GancliError(f"{path}: metadata 'gancli.data_spec' has {key} = {value!r}, not a size")
    names = spec.get("class_names", [])
    if not isinstance(spec.get("name", ""), str) or not (
        isinstance(names, list) and all(isinstance(n, str) for n in names)
    ):
        raise GancliError(f"{path}: metadata 'gancli.data_spec' has a name or class names that are not strings")
    if "gancli.state" in metadata:
        _json_object(path, "gancli.state", metadata["gancli.state"])
    return metadata


@dataclass
class Checkpoint:
    path: Path
    metadata: dict[str, str]
    tensor_names: list[str]
    # an exported model folder (gancli.model_folder): its model.safetensors stores one generator's
    # weights without a prefix; they are seen here under this prefix ("G_ema." or "G.")
    exported_as: str = ""
    export: Optional[dict[str, Any]] = None  # that folder's config.json

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
                for stored in f.keys():
                    name = self.exported_as + stored
                    if name.startswith(prefix):
                        out[name[len(prefix) :]] = f.get_tensor(stored)
        except Exception as exc:
            raise GancliError(f"{self.path} is corrupt: {exc}; use an earlier checkpoint") from None
        return out


def read(path: Path | str) -> Checkpoint:
    """Open a gancli checkpoint file and validate its metadata; tensors are read on demand.

    A model folder or a hub id is read by :func:`gancli.references.read_checkpoint`.
    """
    path = Path(path).expanduser()
    return from_header(path, read_header(path))


def from_header(path: Path, header: dict[str, Any]) -> Checkpoint:
    """The checkpoint of the file at ``path`` whose safetensors header (:func:`read_header`) is ``header``."""
    metadata = validate_metadata(path, header.get("__metadata__"))
    names = [k for k in header if k != "__metadata__"]
    return Checkpoint(path=path, metadata=metadata, tensor_names=names)


def generator_prefix(ckpt: Checkpoint, ema: Optional[bool] = None) -> str:
    """``G_ema.`` when present (unless ema=False), else ``G.``."""
    if ckpt.exported_as and ema is not None and ema != (ckpt.exported_as == "G_ema."):
        held = "EMA" if ckpt.exported_as == "G_ema." else "trained (raw)"
        other = "--raw for the trained weights" if ckpt.exported_as == "G_ema." else "without --raw for the EMA weights"
        raise GancliError(f"{ckpt.path.parent} holds only the {held} generator; drop --ema/--no-ema, or export "
                          f"again {other}")
    if ema is not False and ckpt.has("G_ema."):
        return "G_ema."
    if ema is True:
        raise GancliError(f"{ckpt.path} has no EMA generator; drop --ema or train with train.ema=true")
    return "G."
