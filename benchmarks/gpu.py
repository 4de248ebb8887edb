"""``python -m benchmarks gpu``: sec/kimg of the StyleGAN 256² recipes on a CUDA device, gancli against a
plain PyTorch loop of the same networks, in fp32, TF32, bf16 and fp16, with peak GPU memory.

Each arm is one fresh process (benchmarks.step_worker), run one after the other on the same device in the
same run: a few warm-up steps, then timed steps (``torch.cuda.synchronize()`` after each) for at least
``--seconds`` in whole periods of the lazy regularizers. The data are seeded random uint8 images held on
the device in both arms (gancli moves in-memory data of up to 2 GiB to the GPU; the plain arm indexes the
same tensor there), so data loading does not enter the timing.

Precisions: *fp32* is TF32 off for matmuls and cuDNN (NVlabs' training setting); *TF32* is both on;
*bf16* and *fp16* are autocast (gancli: ``--precision bf16|fp16``, fp16 with accelerate's GradScaler;
plain: ``torch.autocast`` around the step, bf16 only, as the plain loops have no GradScaler) with TF32
off for what stays in float32. gancli's own ``--precision no`` leaves PyTorch's defaults (cuDNN TF32 on,
matmul TF32 off), between the fp32 and TF32 rows.
"""
from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from benchmarks import step_worker


@dataclass(frozen=True)
class GpuCase:
    name: str  # the recipe
    family: str
    batch: int
    batch_source: str
    period: int = 1  # steps over which the lazy regularizers repeat: timed windows are whole periods
    settings: tuple[str, ...] = ()  # both arms, on top of the recipe
    resolution: int = 256
    channels: int = 3
    images: int = 128  # the synthetic data set held on the device


CASES = (
    GpuCase("stylegan-ffhq-256", "stylegan", 32,
            "the recipe's batch at ≥ 64² (batch_per_resolution 64 = 32), from NVlabs/stylegan train.py's 8-GPU FFHQ "
            "config (minibatch_base 32, minibatch_dict 64: 32), i.e. 4 per GPU there",
            settings=("model.grow=false",)),
    GpuCase("stylegan2-ffhq-256", "stylegan2", 64,
            "the recipe's batch, stylegan2-ada-pytorch train.py cfg_specs['paper256'] mb = 64 (ref_gpus 8, i.e. 8 per "
            "GPU there)",
            period=16,  # R1 every 16 steps, path length every 4
            settings=("train.augment=none",)),
)
# the same recipes with networks small enough for a CPU test (resolution 32, batch 4, 2 timed steps)
TINY_SETTINGS = ("model.fmap_base=64", "model.fmap_max=16", "model.z_dim=16", "model.w_dim=16",
                 "model.mapping_layers=2", "model.mbstd_group_size=2")
TINY_EXTRA = {"stylegan2": ("model.r1_interval=2", "model.pl_interval=2")}
TINY_PERIOD = {"stylegan2": 2}

PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
GANCLI_PRECISION = {"fp32": "no", "tf32": "no", "bf16": "bf16", "fp16": "fp16"}


@dataclass(frozen=True)
class GpuArm:
    kind: str  # "plain" | "gancli"
    precision: str  # one of PRECISIONS

    @property
    def label(self) -> str:
        return f"{self.kind} {self.precision}"


# the order they run in: the pairs that matter most first, should the run's budget end it early
ARMS = (GpuArm("plain", "fp32"), GpuArm("gancli", "fp32"), GpuArm("plain", "bf16"), GpuArm("gancli", "bf16"),
        GpuArm("plain", "tf32"), GpuArm("gancli", "tf32"), GpuArm("gancli", "fp16"))

# NVlabs' published training speeds at 256² (facts as published; "derived" rows divide a published total
# time by its kimg). Other GPUs, code and settings than ours: for scale, not a like-for-like ratio.
NVLABS_SOURCES = {
    "stylegan": "NVlabs/stylegan README.md, \"Expected training times for the default configuration using Tesla "
                "V100 GPUs\" (commit 1e0d5c7)",
    "stylegan2-ada": "NVlabs/stylegan2-ada-pytorch README.md, \"Expected training time\" table (commit d72cc7d)",
    "stylegan3": "NVlabs/stylegan3 docs/configs.md (commit c233a91)",
    "stylegan2": "NVlabs/stylegan2 README.md, \"typical training times using NVIDIA DGX-1 with 8 Tesla V100 GPUs\" "
                 "(commit bf0fe0b)",
}
NVLABS = {  # family: rows of (source key, configuration, GPUs, GPU, sec/kimg, GPU memory per GPU)
    "stylegan": (
        ("stylegan", "FFHQ-style default (config F, growing 8² → 256², 25000 kimg, TensorFlow fp32): "
                     "14 days 22 hours", 1, "V100", "51.6 (derived: 358 h / 25000 kimg, averaged over growth)", "—"),
        ("stylegan", "the same: 3 days 8 hours", 8, "V100", "11.5 (derived: 80 h / 25000 kimg)", "—"),
    ),
    "stylegan2": (
        ("stylegan2-ada", "--cfg=auto at 256² (batch 16, fmaps 0.5, 2 mapping layers, fp16 in the 4 highest "
                          "resolutions, custom CUDA ops, ADA)", 1, "V100", "21.6–24.2", "5.0 GB"),
        ("stylegan2-ada", "the same", 8, "V100", "4.4–5.5", "3.2 GB"),
        ("stylegan3", "\"Old StyleGAN2-ADA configurations\", 256²: --cfg=stylegan2 --batch=16 --map-depth=2 "
                      "--cbase=16384 (= --cfg=auto)", 1, "V100 / A100", "20.84 / 12.53", "4.5 GB"),
        ("stylegan3", "\"FFHQ-U ablations at 256x256\": --cfg=stylegan2 --batch=64 --gamma=1 --cbase=16384 "
                      "--mbstd-group=8 --aug=noaug (paper256's widths and batch, 8 mapping layers)",
         8, "V100 / A100", "3.61 / 2.19", "2.7 GB"),
        ("stylegan2", "config-f 256×256 (TensorFlow), 25000 kimg: 32 days 13 hours", 1, "V100",
         "112.5 (derived: 781 h / 25000 kimg)", "6.4 GB"),
    ),
}


@dataclass
class ArmOutcome:
    arm: GpuArm
    result: Optional[dict] = None
    skipped: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.result is not None and "error" not in self.result

    @property
    def note(self) -> str:
        if self.skipped:
            return self.skipped
        if self.result is not None and "error" in self.result:
            return f"failed: {self.result['error']}"
        return ""

    def seconds_per_kimg(self, batch: int) -> float:
        walls = self.result["walls"]
        return sum(walls) / (len(walls) * batch) * 1000.0

    def peak_mib(self) -> float:
        return self.result.get("cuda_peak_mib", self.result["maxrss_mib"])


@dataclass
class CaseOutcome:
    case: GpuCase
    batch: int
    resolution: int
    arms: list[ArmOutcome] = field(default_factory=list)

    def find(self, label: str) -> Optional[ArmOutcome]:
        return next((a for a in self.arms if a.arm.label == label and a.ok), None)

    def ratio(self, outcome: ArmOutcome, precision: str) -> float:
        """Plain-loop time at ``precision`` over this arm's (> 1: this arm is faster); nan without that plain arm."""
        base = self.find(f"plain {precision}")
        if base is None or not outcome.ok:
            return float("nan")
        return base.seconds_per_kimg(self.batch) / outcome.seconds_per_kimg(self.batch)


def cuda_device() -> tuple[bool, str]:
    import torch

    if torch.cuda.is_available():
        return True, ""
    return False, f"torch {torch.__version__} sees no CUDA device (torch.cuda.is_available() is False)"


def write_images(path: Path, count: int, channels: int, resolution: int) -> Path:
    import numpy as np

    rng = np.random.default_rng(0)
    np.savez(path, images=rng.integers(0, 256, size=(count, channels, resolution, resolution), dtype=np.uint8))
    return path


def recipe_settings(name: str) -> tuple[Path, list[str]]:
    """The recipe's file and its model table as ``model.key=value`` overrides (what the plain loop builds from)."""
    from gancli import config as cfg

    path = cfg.find_recipe(name)
    model = cfg.read_recipe(str(path)).get("model", {})
    return path, [f"model.{key}={json.dumps(value)}" for key, value in model.items()]


def arm_spec(case: GpuCase, arm: GpuArm, *, tiny: bool, device: str, data: Path, out: Path, warmup: int,
             seconds: float, max_timed: int) -> dict:
    recipe, model_settings = recipe_settings(case.name)
    settings = [*case.settings, *((*TINY_SETTINGS, *TINY_EXTRA.get(case.family, ())) if tiny else ())]
    period = TINY_PERIOD.get(case.family, 1) if tiny else case.period
    resolution, batch = (32, 4) if tiny else (case.resolution, case.batch)
    timing = {"device": device, "warmup": warmup, "period": period, "seconds": seconds,
              "min_timed": max_timed if tiny else period, "max_timed": max(period, max_timed // period * period),
              "tf32": (arm.precision == "tf32") if device == "cuda" else None}
    if arm.kind == "plain":
        return {"kind": "plain", "family": case.family, "data": str(data), "batch": batch,
                "precision": arm.precision, "settings": [*model_settings, *settings], **timing}
    argv = [case.family, "--recipe", str(recipe), "--data", str(data), "--resolution", str(resolution),
            "--channels", str(case.channels), "--batch", str(batch), "--steps", str(warmup + timing["max_timed"]),
            "--precision", GANCLI_PRECISION[arm.precision], "--seed", "0", "--out", str(out),
            *(a for s in (*settings, "train.sample_every=0", "train.checkpoint_every=0") for a in ("--set", s))]
    return {"kind": "gancli", "argv": argv, **timing}


def skip_reason(arm: GpuArm, cuda: bool) -> Optional[str]:
    if not cuda and arm.precision == "tf32":
        return "not run: no CUDA device (TF32 is a tensor-core mode of CUDA matmuls and convolutions)"
    if not cuda and arm.precision == "fp16":
        return "not run: no CUDA device (gancli trains fp16, with its GradScaler, only on CUDA)"
    return None


def run(*, tiny: bool, cuda: bool, cases: Optional[set[str]] = None, precisions: Optional[set[str]] = None,
        warmup: int = 2, seconds: float = 8.0, max_timed: int = 64, timeout: float = 150.0,
        budget_minutes: float = 6.0, progress: Callable[[str], None] = print) -> list[CaseOutcome]:
    """The arms one after the other, each across the cases; once ``budget_minutes`` have passed no further arm
    starts (so the whole run, its last arm included, stays within about budget + timeout)."""
    if tiny:
        warmup, seconds, max_timed = 1, 0.0, 2
    device = "cuda" if cuda else "cpu"
    run_started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gancli-gpu-bench-") as tmp:
        tmp = Path(tmp)
        outcomes, data = [], {}
        for case in CASES:
            if cases is not None and case.name not in cases:
                continue
            resolution, batch = (32, 4) if tiny else (case.resolution, case.batch)
            outcomes.append(CaseOutcome(case, batch, resolution))
            data[case.name] = write_images(tmp / f"{case.name}.npz", 16 if tiny else case.images, case.channels,
                                           resolution)
        # arm by arm across the cases: should the budget end the run early, both cases have their first pairs
        for arm in ARMS:
            if precisions is not None and arm.precision not in precisions:
                continue
            for outcome in outcomes:
                case = outcome.case
                reason = skip_reason(arm, cuda)
                if reason is None and time.perf_counter() - run_started > budget_minutes * 60:
                    reason = f"not run: the run's budget (--budget-minutes {budget_minutes:g}) was spent"
                if reason:
                    outcome.arms.append(ArmOutcome(arm, skipped=reason))
                    continue
                slug = f"{case.name}-{arm.kind}-{arm.precision}"
                spec = arm_spec(case, arm, tiny=tiny, device=device, data=data[case.name], out=tmp / f"run-{slug}",
                                warmup=warmup, seconds=seconds, max_timed=max_timed)
                started = time.perf_counter()
                result = step_worker.run(spec, tmp / f"{slug}.log", timeout)
                if "error" in result:
                    log = (tmp / f"{slug}.log").read_text(errors="replace")[-2000:]
                    progress(f"gpu: {case.name} {arm.label} failed: {result['error']}\n{log}")
                else:
                    spk = sum(result["walls"]) / (len(result["walls"]) * outcome.batch) * 1000
                    peak = result.get("cuda_peak_mib", result["maxrss_mib"])
                    seconds_taken = time.perf_counter() - started
                    progress(f"gpu: {case.name} {arm.label}: {spk:.2f} sec/kimg, peak {peak:.0f} MiB, "
                             f"{len(result['walls'])} timed steps ({seconds_taken:.0f} s with start-up)")
                outcome.arms.append(ArmOutcome(arm, result=result))
    return outcomes


def _fmt(value: float, digits: int = 2) -> str:
    return "—" if value != value else f"{value:.{digits}f}"


def _ratio(value: float) -> str:
    return "—" if value != value else f"{value:.2f}×"


def device_facts(outcomes: list[CaseOutcome]) -> dict:
    for outcome in outcomes:
        for arm in outcome.arms:
            if arm.ok:
                return arm.result
    return {}


def markdown(outcomes: list[CaseOutcome], *, command: str, date: str, minutes: float, tiny: bool, cpu_name: str,
             warmup: int, seconds: float) -> str:
    from benchmarks.report import table

    facts = device_facts(outcomes)
    cuda = "cuda_peak_mib" in facts
    device = (f"{facts['device_name']} (1 GPU)" if cuda else f"CPU: {cpu_name} (no CUDA; --allow-cpu)")
    versions = (f"{facts.get('torch', '?')} / CUDA {facts.get('cuda')} / cuDNN {facts.get('cudnn')}" if cuda
                else f"{facts.get('torch', '?')} (CPU build or no device)")
    timing = ("1 warm-up step, then 2 timed steps (--tiny)" if tiny else
              f"{warmup} warm-up steps, then timed steps for ≥ {seconds:g} s in whole lazy-regularization periods")
    meta = table(("", ""), [
        ("date", date), ("command", f"`{command}`"), ("device", device), ("torch / CUDA / cuDNN", versions),
        ("per arm", f"one fresh process; {timing}; torch.cuda.synchronize() after every step on CUDA; "
                    f"cudnn.benchmark {facts.get('cudnn_benchmark', 'off')} (PyTorch's default, in both arms)"),
        ("data", "seeded random uint8 images held on the device in both arms (gancli keeps in-memory data of up to "
                 "2 GiB on the GPU; the plain arm indexes the same tensor there): data loading is not timed"),
        ("wall time of this run", f"{minutes:.1f} min"),
    ])
    memory = "peak GPU MiB (max_memory_allocated)" if cuda else "peak RSS MiB"
    parts = [meta]
    for outcome in outcomes:
        case = outcome.case
        rows = []
        for a in outcome.arms:
            if not a.ok:
                rows.append((a.arm.kind, a.arm.precision, "—", "—", "—", "—", "—", "—", a.note))
                continue
            spk = a.seconds_per_kimg(outcome.batch)
            note = "the plain loops have no GradScaler: no plain fp16 arm" if a.arm.precision == "fp16" else ""
            rows.append((a.arm.kind, a.arm.precision, _fmt(spk), _fmt(1000.0 / spk, 1),
                         _ratio(outcome.ratio(a, a.arm.precision)), _ratio(outcome.ratio(a, "fp32")),
                         f"{a.peak_mib():.0f}", len(a.result["walls"]), note))
        size = f"{outcome.resolution}², batch {outcome.batch}" + (", tiny networks" if tiny else "")
        parts.append(
            f"### {case.name}: `gancli train {case.family} --recipe recipes/{case.name}.toml` ({size})\n\n"
            f"Batch: {case.batch_source}. Both arms: the recipe's networks and losses"
            + (f", {', '.join(f'`{s}`' for s in case.settings)}" if case.settings else "")
            + ("" if case.family != "stylegan2" else " (the plain loop has no ADA)")
            + "; gancli also keeps its EMA of G as the recipe asks. sec/kimg = seconds per 1000 images over the "
              "timed steps; ratios are plain time / this arm's (> 1: faster than the plain loop).\n\n"
            + table(("arm", "precision", "sec/kimg", "img/s", "vs plain, same precision", "vs plain fp32", memory,
                     "timed steps", "notes"), rows)
            + "\n\n" + nvlabs_markdown(outcome, facts.get("device_name", cpu_name))
        )
    return "\n\n".join(parts)


def nvlabs_markdown(outcome: CaseOutcome, device_name: str) -> str:
    from benchmarks.report import table

    rows = [(NVLABS_SOURCES[src], config, gpus, gpu, spk, mem) for src, config, gpus, gpu, spk, mem
            in NVLABS[outcome.case.family]]
    ran = [a for a in outcome.arms if a.ok and a.arm.kind == "gancli"]
    if ran:
        best = min(ran, key=lambda a: a.seconds_per_kimg(outcome.batch))
        memory = f"{best.peak_mib() / 1024:.1f} GB" + ("" if "cuda_peak_mib" in best.result else " (RSS)")
        rows.append(("this run", f"gancli {best.arm.precision} (fastest here), batch {outcome.batch}", 1,
                     device_name, _fmt(best.seconds_per_kimg(outcome.batch)), memory))
    return ("NVlabs' published figures at 256² beside this run's fastest gancli arm (other GPUs, code and settings: "
            "for scale, not a like-for-like ratio):\n\n"
            + table(("source", "configuration", "GPUs", "GPU", "sec/kimg", "GPU mem"), rows))


def headline(outcomes: list[CaseOutcome]) -> str:
    lines = []
    for outcome in outcomes:
        for a in outcome.arms:
            if a.ok and a.arm.kind == "gancli":
                same = outcome.ratio(a, a.arm.precision)
                lines.append(f"{outcome.case.name} gancli {a.arm.precision}: {a.seconds_per_kimg(outcome.batch):.2f} "
                             f"sec/kimg" + (f", {same:.2f}× the plain loop" if same == same else ""))
    return "\n".join(lines)


def main(args, *, title: str) -> int:
    """The ``gpu`` command: refuse without CUDA (exit 2) unless --allow-cpu with --tiny; print; refresh RESULTS.md."""
    import sys
    from datetime import datetime, timezone

    from benchmarks.machine import cpu_model, load_average, usable_cores
    from benchmarks.report import update_results

    cuda, why = cuda_device()
    if not cuda and not args.allow_cpu:
        print(f"no CUDA device: {why}; `python -m benchmarks gpu --tiny --allow-cpu` runs the code path on the CPU",
              file=sys.stderr)
        return 2
    if not cuda and not args.tiny:
        print("no CUDA device: --allow-cpu runs only with --tiny (StyleGAN 256² takes minutes a step on a CPU)",
              file=sys.stderr)
        return 2
    command = "python -m benchmarks " + " ".join(sys.argv[1:])
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    started = time.perf_counter()
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    cases = set(args.cases.split(",")) if args.cases else None
    precisions = set(args.precisions.split(",")) if args.precisions else None
    unknown = (cases or set()) - {c.name for c in CASES} | (precisions or set()) - set(PRECISIONS)
    if unknown:
        print(f"unknown case or precision {sorted(unknown)}; cases: {', '.join(c.name for c in CASES)}; "
              f"precisions: {', '.join(PRECISIONS)}", file=sys.stderr)
        return 2
    outcomes = run(tiny=args.tiny, cuda=cuda, cases=cases, precisions=precisions, warmup=args.warmup,
                   seconds=args.seconds, max_timed=args.max_steps, timeout=args.timeout,
                   budget_minutes=args.budget_minutes, progress=log)
    minutes = (time.perf_counter() - started) / 60
    body = markdown(outcomes, command=command, date=date, minutes=minutes, tiny=args.tiny, cpu_name=cpu_model(),
                    warmup=args.warmup, seconds=args.seconds)
    block = f"## {title} (latest run: {'tiny' if args.tiny else 'full'})\n\n{body}"
    print(block)
    if line := headline(outcomes):
        print("\n" + line)
    target = results_target(args)
    if target is not None:
        facts = device_facts(outcomes)
        where = facts.get("device_name") or f"{cpu_model()} (CPU)"
        row = (f"| {date} | `{command}` | {where} | {usable_cores()} | {facts.get('torch', '')} | {load_average()} "
               f"| not run |")
        log(f"wrote {update_results({'gpu': block}, row, target)}")
    failed = [a for o in outcomes for a in o.arms if a.result is not None and "error" in a.result]
    return 1 if failed else 0


def results_target(args) -> Optional[Path]:
    """Where the block goes: --results, else RESULTS.md; a --tiny run says nothing about speed, so it writes
    only where --results names."""
    if args.no_write:
        return None
    if args.results:
        return Path(args.results)
    return None if args.tiny else Path(__file__).resolve().parent / "RESULTS.md"
