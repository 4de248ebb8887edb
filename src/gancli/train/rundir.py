"""The run directory: config.toml, metrics.jsonl, samples/, checkpoints/."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from gancli.checkpoint import atomic_write_text
from gancli.errors import GancliError


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def last(self) -> Path:
        return self.checkpoints / "last.safetensors"

    def step_checkpoint(self, step: int) -> Path:
        return self.checkpoints / f"step-{step:06d}.safetensors"

    def sample_path(self, step: int, suffix: str = ".png") -> Path:
        return self.samples / f"step-{step:06d}{suffix}"

    def holds_run(self) -> bool:
        return self.config.exists() or self.checkpoints.exists() or self.metrics.exists()

    def create(self) -> None:
        try:
            for folder in (self.root, self.samples, self.checkpoints):
                folder.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".write-test-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise GancliError(f"cannot write the run directory {self.root}: {exc.strerror}; choose another --out") from None

    def truncate_metrics(self, after_step: int) -> None:
        """On resume, drop metric lines logged after the checkpoint we resume from."""
        if not self.metrics.exists():
            return
        kept = []
        for line in self.metrics.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line).get("step", 0) <= after_step:
                    kept.append(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill
        atomic_write_text(self.metrics, "".join(line + "\n" for line in kept))

    def prune_checkpoints(self, keep: int) -> None:
        steps = sorted(self.checkpoints.glob("step-*.safetensors"))
        for old in steps[:-keep]:
            try:
                old.unlink()
            except FileNotFoundError:
                pass


def default_run_dir(family: str, data_name: str) -> Path:
    base = Path("runs") / f"{family}-{data_name}".replace("/", "-")
    candidate, n = base, 1
    while RunDir(candidate).holds_run():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate
