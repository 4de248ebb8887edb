"""``python -m benchmarks.allocators``: a family at 256² against its plain loop under each C allocator.

One fresh process per arm (benchmarks.step_worker; 1 warm-up step, then timed steps), on seeded random
images, CPU fp32, the family's networks at fmap_max 256 and z = w = 512 (stylegan without growing). An arm
is ``plain`` or ``gancli``, optionally with an allocator: ``plain-jemalloc`` preloads it into the plain loop
(with train.allocator's settings), ``gancli-jemalloc`` trains with ``--set train.allocator=jemalloc``
(preloaded here as gancli's restart would), ``gancli-keep`` with ``train.keep_freed_memory=true``. Prints one JSON
line per arm: process CPU seconds and wall seconds of each timed step, and the peak resident memory.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import step_worker
from benchmarks.scaling import write_images

BASE = {"stylegan": ["model.fmap_max=256", "model.z_dim=512", "model.grow=false"],
        "stylegan2": ["model.fmap_max=256", "model.z_dim=512"]}


def arm_spec(arm: str, family: str, data: Path, batch: int, resolution: int, timed: int, out: Path,
             settings: list[str]) -> tuple[dict, dict[str, str]]:
    """The step_worker spec of ``arm`` and what it adds to the environment."""
    from gancli.train import allocator as allocators

    kind, _, allocator = arm.partition("-")
    timing = {"device": "cpu", "warmup": 1, "min_timed": timed, "max_timed": timed, "seconds": 0.0, "period": 1}
    if allocator == "keep" and kind == "plain":  # train.keep_freed_memory's thresholds, read by glibc at start-up
        env = {"MALLOC_MMAP_THRESHOLD_": str(allocators.MMAP_THRESHOLD),
               "MALLOC_TRIM_THRESHOLD_": str(allocators.TRIM_THRESHOLD)}
    elif allocator and allocator != "keep":  # preloaded here as gancli's restart would (step_worker drives the CLI)
        env = allocators.preload_environment(allocator)
    else:  # gancli-keep sets its thresholds itself, as a user's run does
        env = {}
    if kind == "plain":
        return {"kind": "plain", "family": family, "data": str(data), "batch": batch, "precision": "no",
                "settings": settings, **timing}, env
    extra = ["train.sample_every=0", "train.checkpoint_every=0"]
    if allocator == "keep":
        extra.append("train.keep_freed_memory=true")
    elif allocator:
        extra.append(f"train.allocator={allocator}")
    argv = [family, "--data", str(data), "--resolution", str(resolution), "--channels", "3", "--batch", str(batch),
            "--steps", str(1 + timed), "--precision", "no", "--seed", "0", "--out", str(out / arm),
            *(a for s in settings + extra for a in ("--set", s))]
    return {"kind": "gancli", "argv": argv, **timing}, env


def main(argv: list[str] | None = None) -> int:
    from gancli.errors import GancliError

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
            started = time.perf_counter()
            try:
                spec, env = arm_spec(arm, args.family, data, args.batch, args.resolution, args.steps, out, settings)
            except GancliError as exc:  # e.g. the allocator's library is not installed
                result = {"error": str(exc)}
            else:
                result = step_worker.run(spec, out / f"{arm}.log", args.timeout, env=env)
            print(json.dumps({"family": args.family, "arm": arm, "batch": args.batch, "cpus": result.get("cpus"),
                              "walls": result.get("walls"), "maxrss_mib": result.get("maxrss_mib"),
                              "error": result.get("error"), "total_s": round(time.perf_counter() - started)}),
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
