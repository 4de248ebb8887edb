"""What `gancli serve` is given: checkpoint files, exported model folders and training run folders.

A run folder stands for its newest checkpoint, which changes while the run trains; the other two
stand for themselves. Only these paths are ever read by the server: requests name a model by its
index or name, never by a path. No torch here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from gancli.errors import GancliError

CHECKPOINT = "checkpoint"
MODEL_FOLDER = "model folder"
RUN = "run"

LAB_GIF = "lab.gif"  # written by the trainer's 2-D lab (gancli.train.lab) into the run folder


@dataclass(frozen=True)
class Source:
    path: Path
    kind: str
    name: str

    def newest_checkpoint(self) -> Optional[Path]:
        """The checkpoint to show now: the file or folder itself, or a run's newest checkpoint (None yet)."""
        if self.kind != RUN:
            return self.path
        folder = self.path / "checkpoints"
        last = folder / "last.safetensors"
        if last.is_file():
            return last  # the trainer writes step-N first, then last as its copy: last is the newest
        numbered = [(int(p.name[5:-12]), p) for p in folder.glob("step-*.safetensors") if p.name[5:-12].isdigit()]
        return max(numbered)[1] if numbered else None

    def fingerprint(self) -> Optional[tuple]:
        """Changes when the checkpoint to show changes (a new file under the same name included)."""
        path = self.newest_checkpoint()
        if path is None:
            return None
        try:
            stat = (path / "model.safetensors" if path.is_dir() else path).stat()
        except OSError:
            return None
        return (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)

    def lab_animation(self) -> Optional[Path]:
        """RUN/lab.gif of a run on 2-D points, once the trainer has written it."""
        if self.kind != RUN:
            return None
        gif = self.path / LAB_GIF
        return gif if gif.is_file() else None


def is_run_folder(path: Path) -> bool:
    return path.is_dir() and ((path / "checkpoints").is_dir() or (path / "config.toml").is_file())


def resolve_sources(paths: Sequence[Path]) -> list[Source]:
    """One Source per path, with unique URL-safe names; one clear GancliError for a path that cannot be served."""
    from gancli.model_folder import is_model_folder

    if not paths:
        raise GancliError("give at least one checkpoint, exported model folder or run folder to serve")
    sources: list[Source] = []
    taken: set[str] = set()
    for given in paths:
        path = Path(given).expanduser()
        if not path.exists():
            raise GancliError(f"{path}: no such file or folder; give a .safetensors checkpoint, a folder from "
                              f"'gancli export --format hf' or a training run folder")
        if path.is_dir():
            if is_model_folder(path):
                kind = MODEL_FOLDER
            elif is_run_folder(path):
                kind = RUN
            else:
                raise GancliError(f"{path} is a folder but neither a run folder (no checkpoints/) nor an exported "
                                  f"model folder (no config.json)")
        else:
            kind = CHECKPOINT
        path = path.resolve()
        name = _unique(_url_name(_display_name(path, kind)), taken)
        taken.add(name)
        sources.append(Source(path=path, kind=kind, name=name))
    return sources


def _display_name(path: Path, kind: str) -> str:
    if kind == CHECKPOINT:
        stem = path.name.removesuffix(".safetensors")
        # RUN/checkpoints/last.safetensors: "last" alone says nothing, the run's name does
        return f"{path.parent.parent.name}-{stem}" if path.parent.name == "checkpoints" else stem
    return path.name


def _url_name(text: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    return cleaned[:60] or "model"


def _unique(name: str, taken: set[str]) -> str:
    if name.isdigit():
        name = f"m{name}"  # a bare number would read as an index
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}-{n}", n + 1
    return candidate
