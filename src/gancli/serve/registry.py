"""The served models: one loaded pipeline per source, swapped for the newer one when a run writes a checkpoint.

Every call that touches torch (loading included) runs through :class:`gancli.serve.jobs.JobQueue`,
on a worker thread, so nothing here blocks the event loop.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from gancli.errors import GancliError
from gancli.serve.sources import RUN, Source


class UnknownModel(GancliError):
    """A request names a model that is not served (answered 404)."""


class NotReady(GancliError):
    """A run folder that has no checkpoint yet (answered 409)."""


@dataclass
class ServedModel:
    index: int
    source: Source
    pipeline: Optional[Any] = None  # gancli.pipeline.Pipeline
    checkpoint: Optional[Path] = None
    fingerprint: Optional[tuple] = None
    version: int = 0  # +1 at each (re)load: the page redraws when it changes
    error: Optional[str] = None  # why the newest checkpoint of a run did not load (the previous one stays)

    @property
    def name(self) -> str:
        return self.source.name

    def ready_pipeline(self):
        if self.pipeline is None:
            raise NotReady(f"{self.name}: the run has written no checkpoint yet; the page loads it when one appears")
        return self.pipeline

    def load(self, device: Optional[str]) -> bool:
        """Load the source's newest checkpoint when it differs from the one held; True when it changed."""
        import gancli

        fingerprint = self.source.fingerprint()
        if fingerprint is None or fingerprint == self.fingerprint:
            return False
        path = self.source.newest_checkpoint()
        self.pipeline = gancli.load(path, device=device)
        self.checkpoint, self.fingerprint, self.error = path, fingerprint, None
        self.version += 1
        return True

    def info(self) -> dict[str, Any]:
        base = {"index": self.index, "name": self.name, "source": self.source.kind, "version": self.version,
                "ready": self.pipeline is not None, "error": self.error,
                "lab": self.source.lab_animation() is not None}
        if self.pipeline is None:
            return base
        pipe = self.pipeline
        spec = pipe.spec
        groups = [name for name, layers in pipe.style_groups().items() if layers] if pipe.w_space else []
        return {
            **base,
            "checkpoint": self.checkpoint.name if self.checkpoint else None,
            "family": pipe.family,
            "kind": spec.kind,
            "resolution": int(spec.resolution),
            "channels": int(spec.channels),
            "z_dim": pipe.z_dim,
            "step": pipe.checkpoint.step,
            "images_seen": pipe.checkpoint.images_seen,
            "ema": pipe.ema,
            "num_classes": pipe.num_classes,
            "class_names": pipe.class_names,
            "class_mixtures": pipe.accepts_class_mixtures,
            "w_space": pipe.w_space,
            "style_groups": groups,
            "truncation": truncation_range(pipe.w_space),
        }


def truncation_range(w_space: bool) -> dict[str, Any]:
    """The page's slider: ψ towards w_avg in W (1 changes nothing), or the |z_i| bound in z (the top means off)."""
    if w_space:
        return {"name": "ψ", "min": 0.0, "max": 1.0, "step": 0.05, "default": 0.7, "off": None}
    return {"name": "T", "min": 0.1, "max": 3.0, "step": 0.1, "default": 3.0, "off": 3.0}


class Registry:
    def __init__(self, sources: Sequence[Source], *, device: Optional[str] = None, reload_every_s: float = 2.0):
        self.models = [ServedModel(i, source) for i, source in enumerate(sources)]
        self.device = device
        self.reload_every_s = reload_every_s
        self._checked_at = 0.0
        self._reloading = threading.Lock()

    def load_all(self) -> None:
        """The first load: a file that cannot be served is a GancliError naming it (the command stops)."""
        for model in self.models:
            model.load(self.device)

    def get(self, key: str) -> ServedModel:
        """A model by its index ("0") or its name; never by a path."""
        for model in self.models:
            if key == model.name or key == str(model.index):
                return model
        names = ", ".join(f"{m.index} ({m.name})" for m in self.models)
        raise UnknownModel(f"no model {key!r} is served; models: {names}")

    def reload_due(self) -> bool:
        return any(m.source.kind == RUN for m in self.models) and \
            time.monotonic() - self._checked_at >= self.reload_every_s

    def refresh(self) -> list[str]:
        """Reload the run folders whose newest checkpoint changed; the names of those reloaded.

        One refresh at a time: a call while another one runs returns at once. A checkpoint that
        fails to load leaves the previous model in place, with the reason in its info.
        """
        if not self._reloading.acquire(blocking=False):
            return []
        try:
            self._checked_at = time.monotonic()
            reloaded = []
            for model in self.models:
                if model.source.kind != RUN:
                    continue
                try:
                    if model.load(self.device):
                        reloaded.append(model.name)
                except GancliError as exc:
                    model.error = str(exc)
                    model.fingerprint = model.source.fingerprint()  # not retried until the file changes again
            return reloaded
        finally:
            self._reloading.release()
