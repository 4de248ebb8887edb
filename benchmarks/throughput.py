"""Training throughput: ``gancli train <family>`` against a plain PyTorch loop, side by side.

Every arm is its own worker process (benchmarks.worker); the workers take turns step by step, in a
rotating order, so a change of machine load hits every arm alike. Warm-up steps (the first, which
also includes start-up) are excluded. The data are seeded random uint8 images held in memory: the
speed of these networks does not depend on the pixels. A step is one generator update (for WGAN-GP
with its 5 critic updates, each on a fresh real batch), and img/s counts batch × steps in every arm.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from benchmarks.machine import worker_env


@dataclass(frozen=True)
class Case:
    name: str
    resolution: int
    channels: int
    width: int  # the gancli settings it goes to: benchmarks.worker.FAMILIES
    batch: int = 64
    z_dim: int = 100
    dataset_size: int = 1024
    family: str = "dcgan"
    settings: tuple[str, ...] = ()  # further gancli settings of this case (both arms build the same nets)
    num_classes: int = 0  # > 0: labelled images (families that need classes)
    arms_in_turn: bool = True  # False: one arm after the other (each worker's memory alone fits the machine)

    @property
    def slug(self) -> str:
        return f"{self.family}-{self.resolution}"


@dataclass(frozen=True)
class Arm:
    label: str
    kind: str  # "plain" | "gancli"
    precision: str = "no"
    warmup: int = 2
    rounds: int = 4
    per_round: int = 1
    sampling: bool = False
    omp_default: bool = False  # run with OpenMP's own wait policy, as a plain script is usually run
    settings: tuple[str, ...] = ()  # gancli settings of this arm only (e.g. spectral norm off)

    @property
    def total_steps(self) -> int:
        return self.warmup + self.rounds * self.per_round + 1  # +1: a tail step run alone, see run_case


# DCGAN 32×32: the Fashion-MNIST recipe's shape (1 channel, ngf = ndf = 32); 64×64: the paper's (3 channels,
# 64); WGAN-GP 32×32: recipes/wgan-gp-fashion-mnist.toml (DCGAN-like nets of width 32, z 128)
CASES = {
    ("dcgan", 32): Case("DCGAN 32×32", 32, 1, 32),
    ("dcgan", 64): Case("DCGAN 64×64", 64, 3, 64),
    ("wgan-gp", 32): Case("WGAN-GP 32×32", 32, 1, 32, z_dim=128, family="wgan-gp"),
    # the API-2 families at 32×32 and width 32 (G and D channel multipliers, or fmap_max), 10 labelled classes
    # for the conditional ones; the gancli arm runs each family's defaults (n_critic, EMA, lazy R1, ...)
    ("sngan", 32): Case("SNGAN 32×32", 32, 1, 32, z_dim=128, family="sngan", num_classes=10),
    ("sagan", 32): Case("SAGAN 32×32", 32, 1, 32, z_dim=128, family="sagan", num_classes=10),
    ("biggan", 32): Case("BigGAN 32×32", 32, 1, 32, z_dim=120, family="biggan", num_classes=10),
    ("progan", 32): Case("ProGAN 32×32 (grown)", 32, 1, 128, z_dim=128, family="progan", batch=32,
                         settings=("start_resolution=32",)),
    ("stylegan", 32): Case("StyleGAN 32×32", 32, 1, 128, z_dim=128, family="stylegan", batch=32,
                           settings=("w_dim=128", "fmap_base=512")),
    # the stylegan2-fashion-mnist recipe's networks (fmap_base 256, z and w 128, a 2-layer mapping network)
    ("stylegan2", 32): Case("StyleGAN2 32×32", 32, 1, 128, z_dim=128, family="stylegan2", batch=32,
                            settings=("w_dim=128", "fmap_base=256", "mapping_layers=2")),
    # about 12 GB resident per worker at batch 8 (R1's double backward through D at 256²): the arms run one
    # after the other, not taking turns, so that two of them never share the 24 GB
    ("stylegan", 256): Case("StyleGAN 256×256", 256, 3, 256, z_dim=512, family="stylegan", batch=8,
                            arms_in_turn=False),
}


@dataclass
class ArmResult:
    arm: Arm
    wall: list[list[float]] = field(default_factory=list)  # per round, per step
    cpu: list[list[float]] = field(default_factory=list)
    maxrss_mib: float = 0.0
    threads: int = 0
    sampling: Optional[dict] = None
    skipped: Optional[str] = None

    def steps(self, which: str) -> list[float]:
        return [t for r in getattr(self, which) for t in r]

    def images_per_second(self, batch: int, which: str = "wall") -> float:
        return batch / statistics.median(self.steps(which))


@dataclass
class CaseResult:
    case: Case
    arms: list[ArmResult]
    flops_per_step: float = 0.0  # counted on one step of the plain loop (the same mathematics)
    peak_gflops: float = 0.0  # this run's convolution peak (benchmarks.peak)

    def share_of_peak(self, arm: ArmResult) -> float:
        """Achieved GFLOP/s of ``arm`` over the measured convolution peak (nan when not counted)."""
        if not self.flops_per_step or not self.peak_gflops:
            return float("nan")
        return self.flops_per_step / statistics.median(arm.steps("wall")) / 1e9 / self.peak_gflops

    def baseline(self) -> ArmResult:
        return next(a for a in self.arms if a.arm.kind == "plain" and not a.skipped)

    def ratio(self, arm: ArmResult, which: str = "wall") -> float:
        """Median step time of the plain loop over that of ``arm`` (> 1: ``arm`` is faster)."""
        base = self.baseline()
        return statistics.median(base.steps(which)) / statistics.median(arm.steps(which))

    def paired_ratio(self, arm: ArmResult) -> float:
        """Median over rounds of plain/arm time in the same round: robust to slow load drifts."""
        base = self.baseline()
        pairs = [sum(b) / sum(a) for b, a in zip(base.wall, arm.wall) if a and b]
        return statistics.median(pairs)


class Worker:
    def __init__(self, spec: dict, log_path: Path, *, omp_default: bool = False) -> None:
        self.spec = spec
        self.log_path = log_path
        self._log = open(log_path, "w")
        env = worker_env()
        if omp_default:
            env.pop("OMP_WAIT_POLICY", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.worker", json.dumps(spec)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True, env=env,
        )

    def _event(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise RuntimeError(f"benchmark worker died (status {self.proc.returncode}); log:\n{self.log_tail()}")
        event = json.loads(line)
        if event["event"] == "error":
            raise RuntimeError(f"benchmark worker failed: {event['message']}; log:\n{self.log_tail()}")
        return event

    def log_tail(self, chars: int = 3000) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]

    def run(self, steps: int) -> list[tuple[float, float]]:
        self.proc.stdin.write(f"go {steps}\n")
        self.proc.stdin.flush()
        times = []
        for _ in range(steps):
            event = self._event()
            assert event["event"] == "step", event
            times.append((event["wall"], event["cpu"]))
        return times

    def finish(self) -> dict:
        event = self._event()
        assert event["event"] == "done", event
        self.proc.wait(timeout=60)
        self._log.close()
        return event

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def worker_spec(case: Case, arm: Arm, data: Path, out: Path) -> dict:
    return {
        "kind": arm.kind, "family": case.family, "data": str(data), "resolution": case.resolution,
        "channels": case.channels, "width": case.width, "z_dim": case.z_dim, "batch": case.batch,
        "steps": arm.total_steps, "precision": arm.precision, "out": str(out),
        "set": [*case.settings, *arm.settings],
    }


def write_images(path: Path, case: Case, seed: int = 0) -> Path:
    import numpy as np

    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(case.dataset_size, case.channels, case.resolution, case.resolution),
                          dtype=np.uint8)
    if case.num_classes:
        np.savez(path, images=images, labels=np.arange(case.dataset_size) % case.num_classes)
    else:
        np.savez(path, images=images)
    return path


def _run_arms(case: Case, live: list[ArmResult], data: Path, workdir: Path, workers: dict,
              progress) -> float:
    """Warm up, time and finish these arms' workers, taking turns step by step; the FLOPs of a step."""
    for r in live:
        spec = worker_spec(case, r.arm, data, workdir / f"run-{case.slug}-{r.arm.label.replace(' ', '-')}")
        if r.arm.sampling:
            spec["sampling"] = {"batch": 64, "repeats": 5}
        slug = "".join(c if c.isalnum() else "-" for c in r.arm.label)
        workers[r.arm.label] = Worker(spec, workdir / f"worker-{case.slug}-{slug}.log", omp_default=r.arm.omp_default)
    for r in live:
        progress(f"  {case.name} {r.arm.label}: warm-up ({r.arm.warmup} steps)")
        workers[r.arm.label].run(r.arm.warmup)
    rounds = max((r.arm.rounds for r in live), default=0)
    for k in range(rounds):
        order = live[k % len(live):] + live[: k % len(live)]
        for r in order:
            if k < r.arm.rounds:
                times = workers[r.arm.label].run(r.arm.per_round)
                r.wall.append([w for w, _ in times])
                r.cpu.append([c for _, c in times])
        progress(f"  {case.name} round {k + 1}/{rounds}: " + ", ".join(
            f"{r.arm.label} {case.batch / statistics.median(r.wall[-1]):.1f} img/s" for r in live if k < r.arm.rounds
        ))
    # the tail step lets each worker finish (checkpoint, sampling) while the others wait
    flops = 0.0
    for r in live:
        workers[r.arm.label].run(1)
        done = workers[r.arm.label].finish()
        r.maxrss_mib, r.threads, r.sampling = done["maxrss_mib"], done["threads"], done.get("sampling")
        flops = done.get("flops_per_step", flops)
        workers.pop(r.arm.label).kill()
    return flops


def run_case(case: Case, arms: list[Arm], workdir: Path, *, skipped: dict[str, str] | None = None,
             progress=print) -> CaseResult:
    data = write_images(workdir / f"images-{case.slug}.npz", case)
    results = [ArmResult(a) for a in arms]
    for r in results:
        if skipped and r.arm.label in skipped:
            r.skipped = skipped[r.arm.label]
    live = [r for r in results if not r.skipped]
    workers: dict[str, Worker] = {}
    flops = 0.0
    try:
        for group in ([live] if case.arms_in_turn else [[r] for r in live]):
            flops = _run_arms(case, group, data, workdir, workers, progress) or flops
    finally:
        for w in workers.values():
            w.kill()
    return CaseResult(case, results, flops_per_step=flops)


API2_CASES = (("sngan", 32), ("sagan", 32), ("biggan", 32), ("progan", 32), ("stylegan", 32), ("stylegan", 256),
              ("stylegan2", 32))
API2_FAMILIES = {family for family, _ in API2_CASES}


def plan(quick: bool, native_bf16: bool) -> list[tuple[Case, list[Arm], dict[str, str]]]:
    """Which arms run for which case; emulated bf16 (no native support) is ~30× slower, so it gets one step,
    at DCGAN 32×32 only."""
    dcgan32 = CASES[("dcgan", 32)]
    schedule = [  # case, warm-up steps, rounds, steps per round
        (dcgan32, 3, 6 if quick else 15, 2),
        (CASES[("dcgan", 64)], 2, 4 if quick else 10, 1),
        # a step is 5 critic updates (each with the penalty's double backward) and a G update: fewer rounds
        (CASES[("wgan-gp", 32)], 2, 4 if quick else 10, 1),
        *((CASES[key], 2, 3 if quick else 8, 1) for key in API2_CASES if key != ("stylegan", 256)),
    ]
    if not quick:  # minutes per step on a 2-core CPU: one warm-up step and two rounds, in --full only
        schedule.append((CASES[("stylegan", 256)], 1, 2, 1))
    out = []
    for case, warmup, rounds, per_round in schedule:
        arms = [
            Arm("plain fp32", "plain", "no", warmup, rounds, per_round),
            Arm("gancli fp32", "gancli", "no", warmup, rounds, per_round, sampling=True),
        ]
        if case == dcgan32:
            # what the machine's load does to a plain script left at OpenMP's default (spinning) wait policy
            arms.append(Arm("plain fp32, OMP default", "plain", "no", 2, 3 if quick else 6, 1, omp_default=True))
        if case.family == "sngan":
            # what spectral normalization costs: the same networks, SN off (one power iteration per D forward)
            arms.append(Arm("gancli fp32, no SN", "gancli", "no", warmup, rounds, per_round,
                            settings=("d_spectral_norm=false",)))
        skipped = {}
        if case.family in API2_FAMILIES:
            out.append((case, arms, skipped))
            continue
        if native_bf16:
            arms.append(Arm("gancli bf16", "gancli", "bf16", warmup, rounds, per_round))
        else:
            arms.append(Arm("gancli bf16", "gancli", "bf16", 1, 1 if quick else 2, 1))
            if case != dcgan32:
                skipped["gancli bf16"] = f"not run: no native bf16 on this CPU (emulated, see {dcgan32.name})"
        out.append((case, arms, skipped))
    return out


def run(quick: bool, native_bf16: bool, progress=print, families: Optional[set[str]] = None) -> list[CaseResult]:
    from benchmarks.peak import conv_peak

    peak = conv_peak()
    progress(f"throughput: convolution peak {peak['gflops']:.1f} GFLOP/s ({peak['shape']})")
    results = []
    with tempfile.TemporaryDirectory(prefix="gancli-bench-") as tmp:
        for case, arms, skipped in plan(quick, native_bf16):
            if families is not None and case.family not in families:
                continue
            if not _installed(case.family):
                progress(f"throughput: {case.name} skipped (family {case.family!r} is not installed)")
                continue
            progress(f"throughput: {case.name} (batch {case.batch}, width {case.width}, {case.channels} channel(s))")
            result = run_case(case, arms, Path(tmp), skipped=skipped, progress=progress)
            result.peak_gflops = peak["gflops"]
            results.append(result)
    PEAK.update(peak)
    return results


def _installed(family: str) -> bool:
    from gancli.plugins import discover

    record = discover().get(family)
    return record is not None and record.ok


PEAK: dict = {}  # the last run's convolution peak, for the report
