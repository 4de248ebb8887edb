"""2-D mode coverage (ring8, grid25), several seeds per family/technique, beside published tables.

Each configuration trains through the real command line (``gancli train FAMILY --data ring8 ...``),
then 2500 samples from the last checkpoint are scored with gancli.metrics.modes (VEEGAN/PacGAN
protocol: a sample is high quality within 3σ of its nearest mode; a mode is captured by ≥ 1 such
sample; reverse KL of the mode histogram of high-quality samples against uniform).
Families or recipes that are not installed are listed as skipped, never invented.
"""
from __future__ import annotations

import math
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from benchmarks.machine import worker_env

DATASETS = ("ring8", "grid25")
NUM_SAMPLES = 2500


@dataclass(frozen=True)
class ModeConfig:
    label: str
    family: str
    overrides: tuple[str, ...] = ()


CONFIGS = (
    ModeConfig("GAN (non-saturating)", "gan"),
    ModeConfig("GAN (minimax)", "gan", ("loss=minimax",)),
    ModeConfig("GAN + one-sided label smoothing 0.9", "gan", ("real_label=0.9",)),
    ModeConfig("GAN + minibatch discrimination", "gan", ("minibatch_discrimination=true",)),
    ModeConfig("GAN + feature matching (independent real batch)", "gan", ("feature_matching=true",)),
    ModeConfig("GAN + feature matching (D's batch)", "gan",
               ("feature_matching=true", "feature_matching_target=same_batch")),
    ModeConfig("GAN + virtual batch norm (G)", "gan", ("g_norm=virtual",)),
    ModeConfig("WGAN-GP", "wgan-gp"),
)

# name, source, (ring modes, HQ %, revKL), (grid modes, HQ %, revKL); None where the paper has no number.
# VEEGAN Table 1 (5 runs), PacGAN Table 1 (10 trials, ± standard error), GDPP Table 1; see
# /work/shared/notes/metrics.md §4.3. Architectures and budgets differ between papers (and from ours).
PUBLISHED = (
    ("GAN", "VEEGAN T1", ("1", "99.3", None), ("3.3", "0.5", None)),
    ("ALI", "VEEGAN T1", ("2.8", "0.13", None), ("15.8", "1.6", None)),
    ("Unrolled GAN (5 steps)", "VEEGAN T1", ("7.6", "35.6", None), ("23.6", "16", None)),
    ("VEEGAN", "VEEGAN T1", ("8", "52.9", None), ("24.6", "40", None)),
    ("GAN", "PacGAN T1", ("6.3±0.5", "98.2±0.2", "0.45±0.09"), ("17.3±0.8", "94.8±0.7", "0.70±0.07")),
    ("ALI", "PacGAN T1", ("6.6±0.3", "97.6±0.4", "0.36±0.04"), ("24.1±0.4", "95.7±0.6", "0.14±0.03")),
    ("PacGAN2", "PacGAN T1", ("7.9±0.1", "95.6±2.0", "0.07±0.03"), ("23.8±0.7", "91.3±0.8", "0.13±0.04")),
    ("PacGAN3", "PacGAN T1", ("7.8±0.1", "97.7±0.3", "0.10±0.02"), ("24.6±0.4", "94.2±0.4", "0.06±0.02")),
    ("PacGAN4", "PacGAN T1", ("7.8±0.1", "95.9±1.4", "0.07±0.02"), ("24.8±0.2", "93.6±0.6", "0.04±0.01")),
    ("WGAN-GP", "GDPP T1", ("6.8", "59.6", None), ("24.2", "28.7", None)),
    ("GDPP-GAN", "GDPP T1", ("8.0", "71.7", None), ("24.8", "68.5", None)),
)


@dataclass
class Cell:
    modes: list[int] = field(default_factory=list)
    high_quality: list[float] = field(default_factory=list)
    reverse_kl: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    total_modes: int = 0
    failure: Optional[str] = None
    recipe: Optional[str] = None


def _mean_se(values: list[float], digits: int, scale: float = 1.0) -> str:
    values = [v * scale for v in values if not math.isnan(v)]
    if not values:
        return "n/a"
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    se = statistics.stdev(values) / math.sqrt(len(values))
    return f"{mean:.{digits}f}±{se:.{digits}f}"


@dataclass
class ModeResults:
    cells: dict[tuple[str, str], Cell]
    skipped: list[tuple[str, str]]
    seeds: int
    steps_note: str

    def markdown(self) -> str:
        from benchmarks.report import table

        rows = []
        labels = list(dict.fromkeys(label for label, _ in self.cells))
        for label in labels:
            row = [label, "gancli (this run)"]
            notes = []
            for data in DATASETS:
                cell = self.cells.get((label, data))
                if cell is None or cell.failure:
                    row += ["—", "—", "—"]
                    if cell is not None:
                        notes.append(f"{data}: {cell.failure}")
                    continue
                row += [_mean_se(cell.modes, 1), _mean_se(cell.high_quality, 1, 100.0), _mean_se(cell.reverse_kl, 2)]
                notes.append(f"{data}: recipe {cell.recipe or 'family defaults'}, {statistics.fmean(cell.seconds):.0f} s/run")
            rows.append(row + ["; ".join(notes)])
        for name, source, ring, grid in PUBLISHED:
            rows.append([name, source, *(v or "—" for v in ring), *(v or "—" for v in grid), ""])
        header = ("method", "source", "ring8 modes (/8)", "ring8 HQ %", "ring8 revKL",
                  "grid25 modes (/25)", "grid25 HQ %", "grid25 revKL", "notes")
        skipped = "".join(f"\n- skipped {label}: {why}" for label, why in self.skipped)
        return (
            f"### 2-D mode coverage ({self.seeds} seeds each, mean ± standard error; {NUM_SAMPLES} samples per model)\n\n"
            "HQ: share of samples within 3σ of the nearest mode (real data score ≈ 98.9%); a mode is captured by ≥ 1 "
            "HQ sample; revKL = KL(HQ mode histogram ‖ uniform) in nats. Published rows use other networks and "
            f"budgets: compare the shape of the results, not the third digit. {self.steps_note}\n\n"
            + table(header, rows) + skipped
        )


def _recipe_for(family: str, data: str) -> Optional[str]:
    from gancli.config import list_recipes

    recipes = list_recipes()
    for name in (f"{family}-{data}", *(f"{family}-{other}" for other in DATASETS if other != data)):
        if name in recipes:
            return name
    return None


def _available(config: ModeConfig) -> Optional[str]:
    """None if the configuration can run here, else why not."""
    from gancli.plugins import discover

    record = discover().get(config.family)
    if record is None or not record.ok:
        return f"family {config.family!r} is not installed" if record is None else f"plugin error: {record.error}"
    if "points" not in record.family.data_kinds:
        return f"family {config.family!r} does not train on 2-D points"
    fields = set(record.family.load_config_model().model_fields)
    missing = [o.split("=", 1)[0] for o in config.overrides if o.split("=", 1)[0] not in fields]
    return f"{config.family} has no setting {', '.join(missing)}" if missing else None


def train_and_score(config: ModeConfig, data: str, seed: int, workdir: Path, steps: Optional[int],
                    env: Optional[dict] = None) -> tuple[dict, float, Optional[str]]:
    import gancli
    from gancli.data.toys import TOYS
    from gancli.metrics.modes import mode_coverage

    recipe = _recipe_for(config.family, data)
    out = workdir / f"{config.family}-{data}-{CONFIGS.index(config) if config in CONFIGS else 'x'}-{seed}"
    argv = [*_gancli(), "train", config.family, "--data", data, "--seed", str(seed), "--out", str(out),
            "--sample-every", "0", "--checkpoint-every", "0"]
    if recipe:
        argv += ["--recipe", recipe]
    if steps:
        argv += ["--steps", str(steps)]
    for override in config.overrides:
        argv += ["--set", override]
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env={**worker_env(), **(env or {})})
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError((proc.stderr.strip().splitlines() or ["no output"])[-1])
    samples = gancli.load(out / "checkpoints" / "last.safetensors").sample(NUM_SAMPLES, seed=10_000 + seed)
    toy = TOYS[data]
    return mode_coverage(samples, toy.centers, toy.std).as_dict(), seconds, recipe


def _gancli() -> list[str]:
    from benchmarks.latency import gancli_executable

    return gancli_executable()


def run(seeds: int = 5, steps: Optional[int] = None, configs=CONFIGS, datasets=DATASETS, progress=print,
        jobs: int = 1) -> ModeResults:
    """Train and score every (configuration, dataset, seed); ``jobs`` runs at a time, one thread each
    when more than one (these 2-D MLPs gain little from a second thread, a lot from a second run)."""
    from concurrent.futures import ThreadPoolExecutor

    cells: dict[tuple[str, str], Cell] = {}
    skipped, tasks = [], []
    for config in configs:
        why = _available(config)
        if why:
            skipped.append((config.label, why))
            progress(f"modes: skip {config.label}: {why}")
            continue
        for data in datasets:
            cells[(config.label, data)] = Cell()
            tasks += [(config, data, seed) for seed in range(seeds)]
    threads = {"OMP_NUM_THREADS": "1"} if jobs > 1 else {}

    def one(task):
        config, data, seed = task
        cell = cells[(config.label, data)]
        if cell.failure:
            return
        try:
            coverage, seconds, recipe = train_and_score(config, data, seed, Path(tmp), steps, threads)
        except RuntimeError as exc:
            cell.failure = str(exc)[:200]
            progress(f"modes: {config.label} on {data} failed: {cell.failure}")
            return
        cell.recipe = recipe
        cell.modes.append(coverage["modes_captured"])
        cell.high_quality.append(coverage["high_quality_share"])
        cell.reverse_kl.append(coverage["reverse_kl"])
        cell.seconds.append(seconds)
        cell.total_modes = coverage["total_modes"]
        progress(f"modes: {config.label} {data} seed {seed}: {coverage['modes_captured']}/"
                 f"{coverage['total_modes']} modes, HQ {coverage['high_quality_share']:.1%} ({seconds:.0f} s)")

    with tempfile.TemporaryDirectory(prefix="gancli-modes-") as tmp:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            list(pool.map(one, tasks))
    note = f"Steps: {steps} per run." if steps else "Steps: each recipe's (or the family default's)."
    if jobs > 1:
        note += f" {jobs} runs at a time, one thread each (s/run is wall time under that sharing)."
    return ModeResults(cells, skipped, seeds, note)
