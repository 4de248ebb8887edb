"""``python -m benchmarks scaling``: memory per image and step time against resolution, stylegan and biggan.

Every (family, resolution, batch) is one fresh process (benchmarks.step_worker) running ``gancli train
FAMILY`` with the family's defaults at that resolution (stylegan: fmap_base 8192, fmap_max 512, z = w = 512,
8 mapping layers, R1 every step, EMA; biggan: G_ch = D_ch = 96, z 120, 2 D steps per G step, EMA) on seeded
random uint8 images held in memory, on the CPU, fp32. The process leaves at its last timed step, before the
closing checkpoint and samples.

*Memory per image* is the slope of the peak resident memory of those fresh processes (``ru_maxrss``, as the
rest of RESULTS.md) between two batch sizes: (peak(b₂) − peak(b₁)) / (b₂ − b₁). What does not grow with the
batch (weights, gradients, Adam's moments, the EMA copy, torch itself) is the intercept, reported as *fixed*.
*Step time* is the median timed step at the larger batch (one step = one G update with its D updates).
"""
from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from benchmarks import step_worker

FAMILIES = ("stylegan", "biggan")
RESOLUTIONS = (32, 64, 128, 256)
BATCHES = (2, 4)
CLASSES = {"biggan": 10}  # conditional by default: labelled images
SUPPORTED = {"biggan": (32, 64, 128)}  # the plugin's architectures (BigGAN-PyTorch's for those sizes)
TINY_SETTINGS = {
    "stylegan": ("fmap_base=64", "fmap_max=16", "z_dim=16", "w_dim=16", "mapping_layers=2", "mbstd_group_size=2"),
    "biggan": ("g_ch=8", "d_ch=8", "shared_dim=8"),  # self-attention needs 8 | channels
}


@dataclass
class Point:
    family: str
    resolution: int
    runs: dict[int, dict]  # batch → step_worker result (or {"error": ...})
    skipped: Optional[str] = None

    def ok(self) -> bool:
        return not self.skipped and len(self.runs) >= 2 and all("error" not in r for r in self.runs.values())

    def problem(self) -> str:
        if self.skipped:
            return self.skipped
        return "; ".join(f"batch {b}: {r['error']}" for b, r in self.runs.items() if "error" in r)

    @property
    def batches(self) -> tuple[int, int]:
        b = sorted(self.runs)
        return b[0], b[-1]

    def peak(self, batch: int) -> float:
        return self.runs[batch]["maxrss_mib"]

    def per_image_mib(self) -> float:
        b1, b2 = self.batches
        return (self.peak(b2) - self.peak(b1)) / (b2 - b1)

    def fixed_mib(self) -> float:
        b1, _ = self.batches
        return self.peak(b1) - b1 * self.per_image_mib()

    def step_seconds(self) -> float:
        return statistics.median(self.runs[self.batches[1]]["walls"])

    def seconds_per_image(self) -> float:
        return self.step_seconds() / self.batches[1]


def write_images(path: Path, family: str, resolution: int, count: int) -> Path:
    import numpy as np

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(count, 3, resolution, resolution), dtype=np.uint8)
    if family in CLASSES:
        np.savez(path, images=images, labels=np.arange(count) % CLASSES[family])
    else:
        np.savez(path, images=images)
    return path


def spec(family: str, resolution: int, batch: int, data: Path, out: Path, *, tiny: bool, warmup: int,
         timed: int) -> dict:
    settings = (*(TINY_SETTINGS[family] if tiny else ()), "train.sample_every=0", "train.checkpoint_every=0")
    argv = [family, "--data", str(data), "--resolution", str(resolution), "--channels", "3", "--batch", str(batch),
            "--steps", str(warmup + timed), "--precision", "no", "--seed", "0", "--out", str(out),
            *(a for s in settings for a in ("--set", s))]
    return {"kind": "gancli", "argv": argv, "device": "cpu", "warmup": warmup, "min_timed": timed,
            "max_timed": timed, "seconds": 0.0, "period": 1}


def run(*, families=FAMILIES, resolutions=RESOLUTIONS, batches=BATCHES, tiny: bool = False, warmup: int = 1,
        timed: int = 3, timeout: float = 3600.0, progress: Callable[[str], None] = print) -> list[Point]:
    if tiny:
        warmup, timed = 1, 2
    points = []
    with tempfile.TemporaryDirectory(prefix="gancli-scaling-") as tmp:
        tmp = Path(tmp)
        for family in families:
            for resolution in resolutions:
                supported = SUPPORTED.get(family)
                if supported is not None and resolution not in supported:
                    points.append(Point(family, resolution, {}, skipped=f"not run: {family} makes "
                                        f"{', '.join(map(str, supported))} px images"))
                    continue
                data = write_images(tmp / f"{family}-{resolution}.npz", family, resolution, max(batches) * 4)
                point = Point(family, resolution, {})
                for batch in batches:
                    slug = f"{family}-{resolution}-b{batch}"
                    started = time.perf_counter()
                    result = step_worker.run(spec(family, resolution, batch, data, tmp / f"run-{slug}", tiny=tiny,
                                                  warmup=warmup, timed=timed), tmp / f"{slug}.log", timeout)
                    point.runs[batch] = result
                    if "error" in result:
                        log = (tmp / f"{slug}.log").read_text(errors="replace")[-2000:]
                        progress(f"scaling: {slug} failed: {result['error']}\n{log}")
                    else:
                        progress(f"scaling: {slug}: step {statistics.median(result['walls']):.2f} s, peak RSS "
                                 f"{result['maxrss_mib']:.0f} MiB ({time.perf_counter() - started:.0f} s in all)")
                points.append(point)
    return points


def plot(points: list[Point], path: Path, *, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (ax_mem, ax_time) = plt.subplots(1, 2, figsize=(10, 4))
    for family in dict.fromkeys(p.family for p in points):
        ok = [p for p in points if p.family == family and p.ok()]
        if not ok:
            continue
        x = [p.resolution for p in ok]
        ax_mem.plot(x, [max(p.per_image_mib(), 1e-3) for p in ok], "o-", label=family)
        ax_time.plot(x, [p.seconds_per_image() for p in ok], "o-", label=family)
        # a cost that grows with the pixels: ∝ r², through the family's first point
        for ax, y0 in ((ax_mem, max(ok[0].per_image_mib(), 1e-3)), (ax_time, ok[0].seconds_per_image())):
            ax.plot(x, [y0 * (r / x[0]) ** 2 for r in x], ":", color="grey", linewidth=1)
    for ax, label in ((ax_mem, "memory per image (MiB, slope of peak RSS)"),
                      (ax_time, "step time per image (s)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({p.resolution for p in points if p.ok()}), labels=None)
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_yscale("log")
        ax.set_xlabel("resolution (px)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(title="dotted: ∝ pixels")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def markdown(points: list[Point], *, command: str, date: str, cpu: str, cores: str, minutes: float, tiny: bool,
             plot_name: Optional[str], warmup: int, timed: int) -> str:
    from benchmarks.report import table

    meta = table(("", ""), [
        ("date", date), ("command", f"`{command}`"), ("CPU", f"{cpu} ({cores} cores usable)"),
        ("per point", ("tiny networks (--tiny); " if tiny else "family defaults at each resolution; ")
         + f"one fresh process per batch, {warmup} warm-up step(s), {timed} timed steps, fp32"),
        ("wall time of this run", f"{minutes:.1f} min"),
    ])
    rows = []
    for p in points:
        if not p.ok():
            rows.append((p.family, p.resolution, "—", "—", "—", "—", "—", "—", p.problem()))
            continue
        b1, b2 = p.batches
        rows.append((p.family, p.resolution, f"{b1}, {b2}", f"{p.peak(b1):.0f}, {p.peak(b2):.0f}",
                     f"{p.per_image_mib():.1f}", f"{p.fixed_mib():.0f}", f"{p.step_seconds():.3g}",
                     f"{p.seconds_per_image():.3g}", ""))
    body = [meta, "### Memory per image and step time against resolution\n\n"
            "Memory per image = (peak RSS at the larger batch − at the smaller) / the batch difference; fixed = "
            "the intercept (weights, gradients, Adam, EMA, torch). Step time at the larger batch.\n\n"
            + table(("family", "resolution", "batches", "peak RSS MiB", "MiB per image", "fixed MiB",
                     "step s (median)", "s per image", "notes"), rows)]
    if plot_name:
        body.append(f"![memory per image and step time against resolution]({plot_name})")
    return "\n\n".join(body)


def main(args, *, title: str) -> int:
    """The ``scaling`` command: run, print, write the plot and refresh RESULTS.md (a --tiny run writes only the
    files named with --plot and --results)."""
    import sys
    from datetime import datetime, timezone

    from benchmarks.gpu import results_target
    from benchmarks.machine import cpu_model, load_average, usable_cores
    from benchmarks.report import update_results

    families = tuple(args.families.split(",")) if args.families else FAMILIES
    resolutions = tuple(int(r) for r in args.resolutions.split(",")) if args.resolutions else RESOLUTIONS
    batches = tuple(int(b) for b in args.batches.split(",")) if args.batches else BATCHES
    unknown = set(families) - set(FAMILIES)
    if unknown or len(set(batches)) != 2:
        print(f"scaling: families are {', '.join(FAMILIES)} and --batches names two sizes (got "
              f"{args.families or ''!r}, {args.batches or ''!r})", file=sys.stderr)
        return 2
    command = "python -m benchmarks " + " ".join(sys.argv[1:])
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    started = time.perf_counter()
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    points = run(families=families, resolutions=resolutions, batches=tuple(sorted(batches)), tiny=args.tiny,
                 warmup=args.warmup, timed=args.steps, timeout=args.timeout, progress=log)
    minutes = (time.perf_counter() - started) / 60
    default_plot = None if args.tiny or args.no_write else Path(__file__).resolve().parent / "scaling.png"
    plot_path = Path(args.plot) if args.plot else default_plot
    target = results_target(args)
    if plot_path is not None and any(p.ok() for p in points):
        plot(points, plot_path, title=f"gancli train, CPU fp32 ({cpu_model()}), {date}")
        log(f"wrote {plot_path}")
    else:
        plot_path = None
    plot_name = None
    if plot_path is not None:
        plot_name = plot_path.name if target is None or plot_path.parent == target.parent else str(plot_path)
    body = markdown(points, command=command, date=date, cpu=cpu_model(), cores=str(usable_cores()), minutes=minutes,
                    tiny=args.tiny, plot_name=plot_name, warmup=1 if args.tiny else args.warmup,
                    timed=2 if args.tiny else args.steps)
    block = f"## {title} (latest run: {'tiny' if args.tiny else 'full'})\n\n{body}"
    print(block)
    if target is not None:
        torch_version = next((r["torch"] for p in points for r in p.runs.values() if "torch" in r), "")
        row = (f"| {date} | `{command}` | {cpu_model()} | {usable_cores()} | {torch_version} | {load_average()} "
               f"| not run |")
        log(f"wrote {update_results({'scaling': block}, row, target)}")
    return 0 if all(p.ok() or p.skipped for p in points) else 1
