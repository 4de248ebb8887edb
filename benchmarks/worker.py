"""One benchmark process, driven step by step by the parent (``python -m benchmarks.worker SPEC_JSON``).

The parent keeps one worker per arm alive and lets them run in turns ("go N" on stdin), so gancli and
the plain loop see the same machine conditions even when the load drifts, while each keeps its own
process: its own peak memory, and gancli its own process-level settings. Each finished step is
reported as one JSON line (wall and CPU seconds) on the original stdout; everything else goes to stderr.

The gancli arm runs the real command line, ``gancli train <family> ...``; the only thing replaced is the
progress display, which the training loop calls once per finished step and which here reports the
step's time and waits for its turn.
"""
from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, TextIO


@dataclass(frozen=True)
class FamilyArms:
    """How one family's two arms build the same networks."""

    plain: str  # "module:Class" of the plain PyTorch loop
    width_settings: tuple[str, ...]  # the gancli settings that each take the case's width
    settings: tuple[str, ...] = ()  # further gancli settings that pin the architecture the plain loop builds
    from_settings: bool = False  # the plain loop builds the family's own nets from the gancli settings


FAMILIES = {
    "dcgan": FamilyArms("benchmarks.plain_dcgan:PlainDCGAN", ("ngf", "ndf")),
    "wgan-gp": FamilyArms("benchmarks.plain_wgan_gp:PlainWGANGP", ("width",), ("arch=dcgan",)),
    "sngan": FamilyArms("benchmarks.plain_families:PlainSNGAN", ("g_ch", "d_ch"), from_settings=True),
    "sagan": FamilyArms("benchmarks.plain_families:PlainSAGAN", ("g_ch", "d_ch"), from_settings=True),
    "biggan": FamilyArms("benchmarks.plain_families:PlainBigGAN", ("g_ch", "d_ch"), from_settings=True),
    "progan": FamilyArms("benchmarks.plain_families:PlainProGAN", ("fmap_max",), from_settings=True),
    "stylegan": FamilyArms("benchmarks.plain_families:PlainStyleGAN", ("fmap_max",), ("grow=false",),
                           from_settings=True),
    "stylegan2": FamilyArms("benchmarks.plain_families:PlainStyleGAN2", ("fmap_max",), from_settings=True),
}


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


class Stepper:
    """Reports each step and blocks between turns; optionally profiles a window of steps."""

    def __init__(self, proto: TextIO, profile_after: int = 0, profile_steps: int = 0,
                 profile_out: Optional[str] = None) -> None:
        self.proto = proto
        self.budget = 0
        self.done_steps = 0
        self.profile_after = profile_after
        self.profile_steps = profile_steps
        self.profile_out = profile_out
        self._profiler = None
        self._wall = self._cpu = 0.0

    def send(self, **message: Any) -> None:
        self.proto.write(json.dumps(message) + "\n")
        self.proto.flush()

    def wait_turn(self) -> None:
        line = sys.stdin.readline()
        if not line or line.strip() == "quit":
            os._exit(0)
        verb, count = line.split()
        assert verb == "go", line
        self.budget = int(count)
        self._mark()

    def _mark(self) -> None:
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def tick(self, total: int) -> None:
        wall, cpu = time.perf_counter() - self._wall, time.process_time() - self._cpu
        self.done_steps += 1
        self.send(event="step", step=self.done_steps, wall=wall, cpu=cpu)
        self._maybe_profile()
        self.budget -= 1
        if self.budget <= 0 and self.done_steps < total:
            self.wait_turn()
        else:
            self._mark()

    def _maybe_profile(self) -> None:
        if not self.profile_steps:
            return
        if self.done_steps == self.profile_after and self._profiler is None:
            from torch.profiler import ProfilerActivity, profile

            self._profiler = profile(activities=[ProfilerActivity.CPU], record_shapes=True)
            self._profiler.__enter__()
        elif self._profiler is not None and self.done_steps == self.profile_after + self.profile_steps:
            self._profiler.__exit__(None, None, None)
            table = self._profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=25)
            shapes = self._profiler.key_averages(group_by_input_shape=True).table(
                sort_by="self_cpu_time_total", row_limit=15
            )
            Path(self.profile_out).write_text(table + "\n\nby input shape\n" + shapes + "\n")
            self._profiler = None


def _load_images(path: str):
    import numpy as np
    import torch

    with np.load(path, allow_pickle=False) as npz:
        labels = torch.from_numpy(npz["labels"].copy()) if "labels" in npz else None
        return torch.from_numpy(npz["images"].copy()), labels


def gancli_settings(spec: dict) -> list[str]:
    """The --set values of the gancli arm, which the plain loops of API-2 families build their nets from too."""
    arms = FAMILIES[spec["family"]]
    return [*(f"{key}={spec['width']}" for key in arms.width_settings), *arms.settings,
            f"z_dim={spec['z_dim']}", *spec.get("set", [])]


def run_plain(spec: dict, stepper: Stepper) -> dict:
    import torch

    module, _, name = FAMILIES[spec["family"]].plain.partition(":")
    plain_loop = getattr(importlib.import_module(module), name)
    images, labels = _load_images(spec["data"])
    extra = {"settings": gancli_settings(spec), "labels": labels} if FAMILIES[spec["family"]].from_settings else {}
    model = plain_loop(images, z_dim=spec["z_dim"], width=spec["width"], batch_size=spec["batch"],
                       seed=spec.get("seed", 0), **extra)
    total = spec["steps"]
    stepper.wait_turn()
    for _ in range(total):
        model.step()
        stepper.tick(total)
    from benchmarks.peak import count_flops

    # one more, untimed step under the FLOP counter: the operations a step of this case needs
    return {"maxrss_mib": _maxrss_mib(), "threads": torch.get_num_threads(), "flops_per_step": count_flops(model.step)}


def run_gancli(spec: dict, stepper: Stepper) -> dict:
    import gancli.train.loop as loop

    class SteppedProgress:
        def __init__(self, total: int, start: int, **kwargs) -> None:
            self.total = total

        def update(self, step: int, terms=None, **kwargs) -> None:
            stepper.tick(self.total)

        def log(self, message: str) -> None:
            print(message, file=sys.stderr)

        def close(self) -> None:
            pass

    loop.ProgressDisplay = SteppedProgress
    out = Path(spec["out"])
    family = spec["family"]
    settings = gancli_settings(spec)
    argv = [
        "gancli", "train", family, "--data", spec["data"], "--resolution", str(spec["resolution"]),
        "--channels", str(spec["channels"]), "--batch", str(spec["batch"]), "--steps", str(spec["steps"]),
        "--precision", spec["precision"], "--seed", str(spec.get("seed", 0)), "--out", str(out),
        *[a for s in settings for a in ("--set", s)],
    ]
    from gancli.cli import main

    sys.argv = argv
    stepper.wait_turn()
    try:
        main()
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise RuntimeError(f"gancli train exited with status {exc.code}") from None
    import torch

    result = {"maxrss_mib": _maxrss_mib(), "threads": torch.get_num_threads()}
    if spec.get("sampling"):
        result["sampling"] = measure_sampling(out / "checkpoints" / "last.safetensors", **spec["sampling"])
    return result


def measure_sampling(checkpoint: Path, *, batch: int, repeats: int) -> dict:
    """img/s of ``gancli.load(ckpt).sample(batch, seed=i)``, median over ``repeats`` calls after one warm-up."""
    import statistics

    import gancli

    t = time.perf_counter()
    pipeline = gancli.load(checkpoint)
    load_seconds = time.perf_counter() - t
    pipeline.sample(batch, seed=0)
    times = []
    for i in range(repeats):
        t = time.perf_counter()
        pipeline.sample(batch, seed=i + 1)
        times.append(time.perf_counter() - t)
    return {"batch": batch, "images_per_second": batch / statistics.median(times), "load_seconds": load_seconds}


def main() -> None:
    spec = json.loads(sys.argv[1])
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # stray prints must not corrupt the protocol
    stepper = Stepper(proto, spec.get("profile_after", 0), spec.get("profile_steps", 0), spec.get("profile_out"))
    try:
        result = (run_plain if spec["kind"] == "plain" else run_gancli)(spec, stepper)
    except Exception as exc:  # reported to the parent, which prints the worker's log
        import traceback

        traceback.print_exc()
        stepper.send(event="error", message=f"{type(exc).__name__}: {exc}")
        sys.exit(1)
    stepper.send(event="done", **result)


if __name__ == "__main__":
    main()
