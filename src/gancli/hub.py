"""Model references: a checkpoint file, an exported model folder, or a Hugging Face hub id.

``owner/name`` (or ``owner/name@revision``, or ``hf://owner/name``) that is not a file or folder
here is a model repository on the hub. Its ``config.json`` and ``model.safetensors`` are fetched
with :func:`huggingface_hub.snapshot_download` into the hub's own cache (``$HF_HOME/hub``,
``$HF_HUB_CACHE``), so a second use reads them from there; with ``HF_HUB_OFFLINE=1`` only that
cache is consulted. Nothing else in a repository is ever downloaded: a model is safetensors and
JSON, never a pickle.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Optional

from gancli.errors import GancliError

HUB_PREFIX = "hf://"
# the files of an exported model folder (gancli export --format hf) that loading needs
MODEL_FILES = ("config.json", "model.safetensors")
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
_HUB_ID = re.compile(rf"^(?P<repo>{_NAME}/{_NAME})(?:@(?P<revision>[A-Za-z0-9._/-]{{1,200}}))?$")
_NOT_MODEL_SUFFIXES = (".safetensors", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin", ".onnx", ".json")


def parse_hub_id(reference: str) -> Optional[tuple[str, Optional[str]]]:
    """(repo id, revision or None) when ``reference`` has the form of a hub model id, else None.

    ``hf://owner/name`` is always a hub id; a bare ``owner/name`` only when it does not end in a file
    suffix (``runs/last.safetensors`` is a missing file, not a repository).
    """
    text = str(reference).strip()
    explicit = False
    for prefix in (HUB_PREFIX, "hf:/", "hf:"):  # pathlib folds hf://a/b into hf:/a/b
        if text.startswith(prefix):
            text, explicit = text[len(prefix):].lstrip("/"), True
            break
    match = _HUB_ID.match(text)
    if match is None or ".." in match["repo"]:
        if explicit:
            raise GancliError(f"{reference!r} is not a hub model id; write it as owner/name or owner/name@revision")
        return None
    if not explicit and match["repo"].lower().endswith(_NOT_MODEL_SUFFIXES):
        return None
    return match["repo"], match["revision"]


def locate(reference: str | Path) -> Path:
    """The local path of a model reference: an existing path as it is, a hub id as its cached snapshot folder.

    A path that does not exist and is no hub id is returned as it is (the caller reports it missing).
    """
    path = Path(reference).expanduser()
    if path.exists():
        return path
    parsed = parse_hub_id(str(reference))
    if parsed is None:
        return path
    return download(*parsed)


@functools.lru_cache(maxsize=32)
def download(repo_id: str, revision: Optional[str] = None) -> Path:
    """The snapshot folder of ``repo_id`` holding config.json and model.safetensors (downloaded when needed)."""
    try:
        import huggingface_hub
        from huggingface_hub import constants
        from huggingface_hub import errors as hub_errors
    except ImportError:
        raise GancliError(f"{repo_id} looks like a hub model id, and loading from the hub needs huggingface_hub: "
                          f"pip install huggingface_hub") from None
    from gancli.version import __version__

    offline = bool(constants.HF_HUB_OFFLINE)
    where = f"{repo_id}{'@' + revision if revision else ''}"
    try:
        folder = huggingface_hub.snapshot_download(
            repo_id, revision=revision, allow_patterns=list(MODEL_FILES), library_name="gancli",
            library_version=__version__, local_files_only=offline,
        )
    except hub_errors.LocalEntryNotFoundError:
        if offline:
            raise GancliError(
                f"no file or folder {where} here, and the hub model {where} is not in the Hugging Face cache "
                f"({constants.HF_HUB_CACHE}) while HF_HUB_OFFLINE=1: download it once online "
                f"(unset HF_HUB_OFFLINE) or pass the path of an exported model folder"
            ) from None
        raise GancliError(f"cannot reach the Hugging Face hub for {where}, and it is not in the cache "
                          f"({constants.HF_HUB_CACHE}); check the connection or pass a local path") from None
    except hub_errors.RevisionNotFoundError:
        raise GancliError(f"the hub model {repo_id} has no revision {revision!r}") from None
    except (hub_errors.RepositoryNotFoundError, hub_errors.GatedRepoError):
        raise GancliError(f"no file or folder {where} here, and no hub model {repo_id} that this account can read "
                          f"(a private or gated repository needs 'hf auth login')") from None
    except hub_errors.HFValidationError as exc:
        raise GancliError(f"{where} is not a valid hub model id ({str(exc).splitlines()[0]})") from None
    except hub_errors.HfHubHTTPError as exc:
        raise GancliError(f"downloading {where} from the hub failed: {str(exc).splitlines()[0]}") from None
    folder = Path(folder)
    missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
    if missing:
        raise GancliError(f"the hub model {where} has no {' and no '.join(missing)}; it was not written by "
                          f"'gancli export --format hf'")
    return folder
