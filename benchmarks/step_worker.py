"""One timed training run in its own process: ``python -m benchmarks.step_worker SPEC_JSON``.

Used by ``python -m benchmarks gpu`` and ``python -m benchmarks scaling``. Unlike benchmarks.worker
(arms taking turns step by step), a run here goes through on its own: ``warmup`` steps, then timed steps
until at least ``seconds`` have passed and a whole number of ``period`` steps is done (the lazy
regularizers of StyleGAN2 repeat every 16 steps, so a timed window holds each pass in its share), or
``max_timed`` steps. On CUDA every step ends with ``torch.cuda.synchronize()``. At the last timed step
the process reports and leaves at once: the closing checkpoint and samples of ``gancli train`` are not
part of the benchmark, and they would add to the peak memory.

The result is one JSON line on the original stdout: the step times (wall clock, and the process's CPU
time, which depends less on other work on the machine), peak resident memory at the last timed step,
peak GPU memory (``torch.cuda.max_memory_allocated``), and the TF32 flags in effect. Everything else
goes to stderr.

* ``kind = "gancli"``: ``gancli train`` with ``argv`` (the real command line; only the progress display
  is replaced by one that times the steps).
* ``kind = "plain"``: the family's plain PyTorch loop (benchmarks.worker.FAMILIES) built from ``settings``
  on ``device``, its real batches drawn from the same uint8 images held on that device, under
  ``torch.autocast`` for ``precision = "bf16"``.
"""
from __future__ import annotations

import importlib
import json
import os
import resource
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Optional, TextIO


def maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def run(spec: dict, log_path: Path, timeout: float, env: dict[str, str] | None = None) -> dict:
    """Run ``spec`` in a fresh process (with ``env`` added to its environment): its result, or
    ``{"error": message}`` (the log keeps the details)."""
    from benchmarks.machine import worker_env

    with open(log_path, "w") as log:
        try:
            proc = subprocess.run([sys.executable, "-m", "benchmarks.step_worker", json.dumps(spec)],
                                  stdout=subprocess.PIPE, stderr=log, text=True, env={**worker_env(), **(env or {})},
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout:.0f} s"}
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    if not events:
        return {"error": f"the worker died (status {proc.returncode}); see {log_path}"}
    event = events[-1]
    if event.pop("event") == "error":
        message = event["message"].splitlines()[0]
        # gancli's own one-line reason ("error: ..."), where it said one, is the useful part
        said = [line for line in log_path.read_text(errors="replace").splitlines() if line.startswith("error: ")]
        return {"error": (said[-1][len("error: "):] if said else message)[:300]}
    return event


class StepTimer:
    def __init__(self, spec: dict) -> None:
        import torch

        self.device = torch.device(spec["device"])
        self.warmup = int(spec["warmup"])
        self.min_timed = int(spec.get("min_timed", 1))
        self.max_timed = int(spec["max_timed"])
        self.seconds = float(spec.get("seconds", 0.0))
        self.period = int(spec.get("period", 1))
        self.warmup_walls: list[float] = []
        self.walls: list[float] = []
        self.cpus: list[float] = []  # process CPU seconds of each timed step (all threads; less load-dependent)
        self._t = self._cpu = 0.0

    def _sync(self) -> None:
        if self.device.type == "cuda":
            import torch

            torch.cuda.synchronize(self.device)

    def start(self) -> None:
        self._sync()
        self._t, self._cpu = time.perf_counter(), time.process_time()

    def tick(self) -> bool:
        """Close one step; True when the timed window is complete."""
        self._sync()
        now, cpu_now = time.perf_counter(), time.process_time()
        wall, self._t = now - self._t, now
        cpu, self._cpu = cpu_now - self._cpu, cpu_now
        if len(self.warmup_walls) < self.warmup:
            self.warmup_walls.append(wall)
            return False
        self.walls.append(wall)
        self.cpus.append(cpu)
        done = len(self.walls)
        if done >= self.max_timed:
            return True
        return done >= self.min_timed and done % self.period == 0 and sum(self.walls) >= self.seconds

    def result(self) -> dict:
        import torch

        out = {
            "walls": self.walls, "cpus": self.cpus, "warmup_walls": self.warmup_walls,
            "maxrss_mib": maxrss_mib(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "device": str(self.device),
        }
        if self.device.type == "cuda":
            out.update(
                cuda_peak_mib=torch.cuda.max_memory_allocated(self.device) / 2**20,
                cuda_reserved_mib=torch.cuda.max_memory_reserved(self.device) / 2**20,
                device_name=torch.cuda.get_device_name(self.device), cuda=torch.version.cuda,
                cudnn=torch.backends.cudnn.version(),
                tf32={"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32},
                cudnn_benchmark=torch.backends.cudnn.benchmark,
            )
        return out


class DeviceImages:
    """Random batches of the benchmark's uint8 images, indexed where they live (on the device), in [-1, 1]."""

    def __init__(self, images_uint8, batch_size: int, device) -> None:
        import torch

        self.images = images_uint8.to(device)
        self.batch_size = batch_size
        self.generator = torch.Generator(device=self.images.device).manual_seed(0)

    def next(self):
        import torch

        index = torch.randint(0, len(self.images), (self.batch_size,), device=self.images.device,
                              generator=self.generator)
        return self.images[index].float() / 127.5 - 1.0


def load_images(path: str):
    import numpy as np
    import torch

    with np.load(path, allow_pickle=False) as npz:
        labels = torch.from_numpy(npz["labels"].copy()) if "labels" in npz else None
        return torch.from_numpy(npz["images"].copy()), labels


def run_plain(spec: dict, timer: StepTimer, send) -> None:
    import torch

    from benchmarks.worker import FAMILIES

    module, _, name = FAMILIES[spec["family"]].plain.partition(":")
    plain_loop = getattr(importlib.import_module(module), name)
    images, labels = load_images(spec["data"])
    device = torch.device(spec["device"])
    model = plain_loop(images, z_dim=0, width=0, batch_size=spec["batch"], seed=0, settings=spec["settings"],
                       labels=labels).to(device)
    model.real_batches = DeviceImages(images, spec["batch"], device)
    precision = spec["precision"]
    if precision == "fp16":
        raise RuntimeError("the plain loops have no GradScaler: fp16 is not a plain arm")
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if precision == "bf16" else nullcontext
    timer.start()
    while True:
        with autocast():
            model.step()
        if timer.tick():
            send(event="done", **timer.result())
            return


def run_gancli(spec: dict, timer: StepTimer, send) -> None:
    import gancli.train.loop as loop

    class TimedProgress:
        # the loop builds its display just before the first step: the clock starts there
        def __init__(self, total: int, start: int, **kwargs) -> None:
            timer.start()

        def update(self, step: int, terms=None, **kwargs) -> None:
            if timer.tick():
                send(event="done", **timer.result())
                os._exit(0)

        def log(self, message: str) -> None:
            print(message, file=sys.stderr)

        def close(self) -> None:
            pass

    loop.ProgressDisplay = TimedProgress
    from gancli.cli import main

    sys.argv = ["gancli", "train", *spec["argv"]]
    try:
        main()
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise RuntimeError(f"gancli train exited with status {exc.code}") from None
    raise RuntimeError("gancli train ended before the timed window was complete (its --steps were too few)")


def set_backends(spec: dict) -> None:
    import torch

    if spec.get("tf32") is not None:
        torch.backends.cuda.matmul.allow_tf32 = bool(spec["tf32"])
        torch.backends.cudnn.allow_tf32 = bool(spec["tf32"])


def main() -> None:
    spec = json.loads(sys.argv[1])
    proto: TextIO = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # stray prints must not corrupt the protocol

    def send(**message) -> None:
        proto.write(json.dumps(message) + "\n")
        proto.flush()

    error: Optional[str] = None
    try:
        set_backends(spec)
        timer = StepTimer(spec)
        (run_plain if spec["kind"] == "plain" else run_gancli)(spec, timer, send)
    except Exception as exc:  # reported to the parent, which shows the log
        import traceback

        traceback.print_exc()
        error = f"{type(exc).__name__}: {exc}"
    if error is not None:
        send(event="error", message=error)
        sys.exit(1)


if __name__ == "__main__":
    main()
