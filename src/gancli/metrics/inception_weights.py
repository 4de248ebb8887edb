"""Finding, verifying and loading the FID Inception weights.

The published weights are a pickle-format `.pth`. gancli opens it only after its sha256 matches the known
file, only with `torch.load(weights_only=True)`, and only in `_load_verified_pth`; the tensors are then
kept as a `.safetensors` copy beside it (or in the gancli cache when that folder is read-only), so every
later run loads without unpickling anything. safetensors has no checksum of its own, so the conversion
records a hash of every tensor (`tensors_sha256`) and each load recomputes it: a copy whose bytes changed
after conversion is never used.
"""
from __future__ import annotations

import io
import os
import tempfile
import urllib.request
from pathlib import Path

from gancli.errors import GancliError
from gancli.metrics._files import default_cache_dir, sha256_of_bytes, write_bytes_atomically

INCEPTION_WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_WEIGHTS_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
)
# Full hash of the file above (95,628,359 bytes); torch-fidelity's v0.2.0 copy is byte-identical.
INCEPTION_WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
CONVERTED_FORMAT = "gancli-inception-weights/2"  # /2: tensors_sha256 recorded and checked
DOWNLOAD_TIMEOUT_S = 60


def torch_hub_checkpoints_dir() -> Path:
    """`$TORCH_HOME/hub/checkpoints`, TORCH_HOME defaulting to `$XDG_CACHE_HOME/torch` or `~/.cache/torch`.

    The same folder torch.hub, pytorch-fid and torch-fidelity use, so a file any of them fetched is reused.
    """
    torch_home = os.environ.get("TORCH_HOME")
    if not torch_home:
        xdg = os.environ.get("XDG_CACHE_HOME")
        torch_home = os.path.join(xdg if xdg else os.path.join("~", ".cache"), "torch")
    return Path(torch_home).expanduser() / "hub" / "checkpoints"


def load_inception_state_dict(weights_path: str | os.PathLike | None = None, *, allow_download: bool = True):
    """State dict for FIDInceptionV3: from `weights_path` (.pth or converted .safetensors), else from the
    torch hub cache, else downloaded into it. Raises GancliError with what to do when none works."""
    if weights_path is not None:
        given = Path(weights_path).expanduser()
        if not given.is_file():
            raise GancliError(f"Inception weights file {given} does not exist; pass the path of {INCEPTION_WEIGHTS_FILENAME}")
        if given.suffix == ".safetensors":
            state, problem = _read_converted(given)
            if state is None:
                raise GancliError(f"{given} {problem}; pass the original {INCEPTION_WEIGHTS_FILENAME} instead")
            return state
        pth = given
    else:
        pth = torch_hub_checkpoints_dir() / INCEPTION_WEIGHTS_FILENAME

    for converted in _converted_locations(pth):
        state, _ = _read_converted(converted)
        if state is not None:
            return state

    if not pth.is_file():
        if not allow_download:
            raise GancliError(_missing_weights_message(pth, "downloads are disabled"))
        try:
            download_file(INCEPTION_WEIGHTS_URL, pth, INCEPTION_WEIGHTS_SHA256)
        except OSError as error:
            raise GancliError(_missing_weights_message(pth, f"download failed: {error}")) from error

    state = _load_verified_pth(pth)
    _save_converted(state, _converted_locations(pth))
    return state


def _load_verified_pth(path: Path) -> dict:
    """The one place gancli unpickles anything: bytes whose sha256 is the published weights' hash."""
    import torch

    data = path.read_bytes()
    actual = sha256_of_bytes(data)
    if actual != INCEPTION_WEIGHTS_SHA256:
        raise GancliError(
            f"{path} has sha256 {actual[:16]}…, not the FID Inception weights ({INCEPTION_WEIGHTS_SHA256[:16]}…); "
            f"delete it and fetch {INCEPTION_WEIGHTS_URL}"
        )
    # Loading the verified bytes (not the path again) means the file cannot change between check and use.
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _converted_locations(pth: Path) -> list[Path]:
    name = Path(INCEPTION_WEIGHTS_FILENAME).with_suffix(".safetensors").name
    return [pth.with_suffix(".safetensors"), default_cache_dir() / "inception" / name]


def tensors_sha256(state: dict) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in name order: changes if any byte does."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def converted_weights_bytes(state: dict) -> bytes:
    """The safetensors form of a verified state dict, with its source hash and its tensors' hash."""
    from safetensors.torch import save

    tensors = {key: tensor.contiguous() for key, tensor in state.items()}
    return save(
        tensors,
        metadata={
            "format": CONVERTED_FORMAT, "source_sha256": INCEPTION_WEIGHTS_SHA256, "source_file": INCEPTION_WEIGHTS_FILENAME,
            "tensors_sha256": tensors_sha256(tensors),
        },
    )


def _read_converted(path: Path) -> tuple[dict | None, str]:
    """(state, "") for a sound converted copy, else (None, what is wrong with it)."""
    if not path.is_file():
        return None, "does not exist"
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
            if header.get("format") != CONVERTED_FORMAT or header.get("source_sha256") != INCEPTION_WEIGHTS_SHA256:
                return None, "is not a gancli-converted FID Inception weights file (or one from an older gancli)"
            state = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception:  # a truncated or foreign file is simply not a usable conversion
        return None, "is not a gancli-converted FID Inception weights file (unreadable)"
    if tensors_sha256(state) != header.get("tensors_sha256"):
        return None, "holds tensors whose hash differs from the one recorded at conversion (the file changed)"
    return state, ""


def _save_converted(state: dict, locations: list[Path]) -> None:
    data = converted_weights_bytes(state)
    for location in locations:
        try:
            write_bytes_atomically(location, data)
            return
        except OSError:
            continue  # read-only folder: try the next place; without any, later runs re-verify the .pth


def download_file(url: str, destination: Path, expected_sha256: str) -> None:
    """Stream `url` to a temporary file beside `destination`; rename it into place only if its hash matches."""
    import hashlib

    destination.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".part", dir=destination.parent)
    digest = hashlib.sha256()
    try:
        with os.fdopen(descriptor, "wb") as handle, urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            for block in iter(lambda: response.read(1 << 20), b""):
                digest.update(block)
                handle.write(block)
            handle.flush()
            os.fsync(handle.fileno())
        if digest.hexdigest() != expected_sha256:
            raise GancliError(f"download of {url} has sha256 {digest.hexdigest()[:16]}…, expected {expected_sha256[:16]}…; try again later")
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _missing_weights_message(pth: Path, reason: str) -> str:
    return (
        f"FID Inception weights not found at {pth} ({reason}); download {INCEPTION_WEIGHTS_URL} "
        f"into {pth.parent} or pass --inception-weights PATH"
    )
