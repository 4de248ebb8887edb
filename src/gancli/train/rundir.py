"""The run directory: config.toml, metrics.jsonl, samples/, checkpoints/."""
from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

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

    def check_new_run(self) -> None:
        """Refuse to start a new run where one exists (its files would be mixed with the new ones)."""
        if not self.holds_run():
            return
        if self.last.exists():
            raise GancliError(f"{self.root} already holds a run; pass --resume to continue it or choose another --out")
        raise GancliError(
            f"{self.root} already holds a run that never wrote a checkpoint (it was killed or failed early); "
            f"delete that folder or choose another --out"
        )

    def check_resumable(self) -> None:
        if self.last.exists():
            return
        if self.holds_run():
            raise GancliError(
                f"nothing to resume: the run in {self.root} never wrote a checkpoint (it was killed or failed "
                f"early); delete that folder and start again without --resume"
            )
        raise GancliError(f"nothing to resume: {self.last} does not exist; drop --resume to start a new run")

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

    def step_checkpoints(self) -> list[Path]:
        """``step-N.safetensors`` files, oldest first (by N, so step 1000000 sorts after 999999)."""
        found = []
        for path in self.checkpoints.glob("step-*.safetensors"):
            number = path.name[len("step-") : -len(".safetensors")]
            if number.isdigit():
                found.append((int(number), path))
        return [path for _, path in sorted(found)]

    def prune_checkpoints(self, keep: int) -> None:
        """Keep the newest ``keep`` step checkpoints; last.safetensors is a separate link, never pruned."""
        for old in self.step_checkpoints()[:-keep]:
            old.unlink(missing_ok=True)

    def remove_stale_temporaries(self) -> None:
        """Delete half-written files that a killed run left behind (never under a final name)."""
        for folder in (self.root, self.checkpoints, self.samples):
            for tmp in folder.glob(".*.tmp"):
                try:
                    tmp.unlink()
                except OSError:
                    pass

    def newest_intact_checkpoint(self) -> Optional[Path]:
        """The newest step checkpoint that reads as a valid gancli checkpoint, if any."""
        from gancli.checkpoint import read

        for path in reversed(self.step_checkpoints()):
            try:
                read(path)
                return path
            except GancliError:
                continue
        return None

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold an exclusive lock on the run for the duration, so two commands never train into it at once.

        The kernel drops the lock when the process dies, even by SIGKILL, so a killed run never blocks its resume.
        """
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            yield
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            handle = open(self.lock_file, "a+")
        except OSError as exc:
            raise GancliError(f"cannot write the run directory {self.root}: {exc.strerror}; choose another --out") from None
        locked = False
        try:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.seek(0)
                owner = handle.read().strip() or "?"
                raise GancliError(
                    f"{self.root} is being trained by another gancli process (pid {owner}); wait for it to "
                    f"finish or stop it, or choose another --out"
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            locked = True
            yield
        finally:
            if locked:
                # unlock explicitly: processes forked meanwhile (data loader workers) share the lock
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()

    @property
    def lock_file(self) -> Path:
        return self.root / ".gancli.lock"

    def snapshot(self) -> dict[Path, bool]:
        """Which of the run's paths exist now; :meth:`remove_created_since` undoes a failed new run."""
        paths = (self.root, self.config, self.metrics, self.samples, self.checkpoints, self.lock_file)
        missing_parents = []
        for parent in self.root.parents:
            if parent.exists():
                break
            missing_parents.append(parent)
        return {path: path.exists() for path in paths} | {parent: False for parent in missing_parents}

    def remove_created_since(self, before: dict[Path, bool]) -> None:
        """Remove what a failed new run created, when it wrote no checkpoint (nothing to resume from)."""
        if self.checkpoints.exists() and any(self.checkpoints.glob("*.safetensors")):
            return
        for path in (self.config, self.metrics, self.samples, self.checkpoints, self.lock_file):
            if before[path] or not path.exists():
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        if not before[self.root]:
            # the root and any parents this run made, each only when empty: never delete what others put there
            for folder in (self.root, *self.root.parents):
                if folder.exists() and before.get(folder, True) is False:
                    try:
                        folder.rmdir()
                    except OSError:
                        break


def default_run_dir(family: str, data_name: str) -> Path:
    base = Path("runs") / f"{family}-{data_name}".replace("/", "-")
    candidate, n = base, 1
    while RunDir(candidate).holds_run():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate
