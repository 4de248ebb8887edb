"""``python -m benchmarks.allocators``: a family at 256² against its plain loop under each C allocator.

One fresh process per arm (benchmarks.step_worker; 1 warm-up step, then timed steps), on seeded random
images, CPU fp32, the family's networks at fmap_max 256 and z = w = 512 (stylegan without growing). An arm
is ``plain`` or ``gancli``, optionally with an allocator: ``plain-jemalloc`` preloads it into the plain loop
(with train.allocator's settings), ``gancli-jemalloc`` trains with ``--set train.allocator=jemalloc``
(gancli restarts itself with it), ``gancli-keep`` with ``train.keep_freed_memory=true``. Prints one JSON
line per arm: process CPU seconds and wall seconds of each timed step, and the peak resident memory.
"""
from __future__ import annotations

import argparse
import ctypes.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import step_worker
from benchmarks.scaling import write_images

BASE = {"stylegan": ["model.fmap_max=256", "model.z_dim=512", "model.grow=false"],
        "stylegan2": ["model.fmap_max=256", "model.z_dim=512"]}
PRELOADED = ("LD_PRELOAD", "MALLOC_CONF", "GANCLI_ALLOCATOR")


def arm_spec(arm: str, family: str, data: Path, batch: int, resolution: int, timed: int, out: Path,
             settings: list[str]) -> tuple[dict, dict[str, str]]:
    """The step_worker spec of ``arm`` and the environment it runs in."""
    from gancli.train.allocator import PRELOADS

    kind, _, allocator = arm.partition("-")
    timing = {"device": "cpu", "warmup": 1, "min_timed": timed, "max_timed": timed, "seconds": 0.0, "period": 1}
    env: dict[str, str] = {}
    if kind == "plain":
        if allocator and allocator != "keep":
            library, conf = PRELOADS[allocator]
            env = {"LD_PRELOAD": ctypes.util.find_library(library) or f"lib{library}.so", **conf}
        if allocator == "keep":  # train.keep_freed_memory's thresholds, read by glibc at start-up
            env = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str((1 << 31) - 1)}
        return {"kind": "plain", "family": family, "data": str(data), "batch": batch, "precision": "no",
                "settings": settings, **timing}, env
    extra = ["train.sample_every=0", "train.checkpoint_every=0"]
    if allocator == "keep":
        extra.append("train.keep_freed_memory=true")
    elif allocator:
        # preloaded here as gancli's restart would (step_worker drives the CLI in its own process)
        library, conf = PRELOADS[allocator]
        env = {"LD_PRELOAD": ctypes.util.find_library(library) or f"lib{library}.so", **conf,
               "GANCLI_ALLOCATOR": allocator}
        extra.append(f"train.allocator={allocator}")
    argv = [family, "--data", str(data), "--resolution", str(resolution), "--channels", "3", "--batch", str(batch),
            "--steps", str(1 + timed), "--precision", "no", "--seed", "0", "--out", str(out / arm),
            *(a for s in settings + extra for a in ("--set", s))]
    return {"kind": "gancli", "argv": argv, **timing}, env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.allocators", description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="stylegan", choices=sorted(BASE))
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--arms", default="plain,gancli,gancli-jemalloc,gancli-tcmalloc,plain-jemalloc")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per arm")
    parser.add_argument("--set", dest="settings", action="append", default=[],
                        help="a setting for both loops instead of the 256² networks' (repeatable)")
    parser.add_argument("--timeout", type=float, default=3600.0)
    args = parser.parse_args(argv)
    settings = args.settings or BASE[args.family]
    with tempfile.TemporaryDirectory(prefix="gancli-allocators-") as tmp:
        out = Path(tmp)
        data = write_images(out / "images.npz", args.family, args.resolution, 32)
        for arm in args.arms.split(","):
            spec, env = arm_spec(arm, args.family, data, args.batch, args.resolution, args.steps, out, settings)
            saved = {key: os.environ.pop(key, None) for key in (*PRELOADED, "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")}
            os.environ.update(env)
            started = time.perf_counter()
            try:
                result = step_worker.run(spec, out / f"{arm}.log", args.timeout)
            finally:
                for key in env:
                    os.environ.pop(key, None)
                os.environ.update({k: v for k, v in saved.items() if v is not None})
            print(json.dumps({"family": args.family, "arm": arm, "batch": args.batch, "cpus": result.get("cpus"),
                              "walls": result.get("walls"), "maxrss_mib": result.get("maxrss_mib"),
                              "error": result.get("error"), "total_s": round(time.perf_counter() - started)}),
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
