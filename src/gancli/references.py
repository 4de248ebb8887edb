"""Model references: what a user may name where a model is expected, turned into the files that hold it.

A reference is a checkpoint file, a model folder written by ``gancli export --format hf`` (or its
model.safetensors), or a hub id ``owner/name`` of such a folder (see :mod:`gancli.hub`). The file
formats stay below this layer: :mod:`gancli.checkpoint` reads checkpoint files and
:mod:`gancli.model_folder` reads model folders; neither knows about the other or about the hub.
"""
from __future__ import annotations

from pathlib import Path

from gancli import checkpoint, hub, model_folder


def read_checkpoint(reference: str | Path) -> checkpoint.Checkpoint:
    """The validated :class:`gancli.checkpoint.Checkpoint` that ``reference`` names; tensors are read on demand."""
    path = hub.locate(reference)
    if path.is_dir():
        return model_folder.read(path)
    header = checkpoint.read_header(path)
    folder = model_folder.sibling_folder(path, header.get("__metadata__"))
    if folder is not None:
        return model_folder.read(folder)
    return checkpoint.from_header(path, header)
