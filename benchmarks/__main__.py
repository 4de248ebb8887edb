"""python -m benchmarks run --quick|--full   ·   python -m benchmarks profile [--resolution 64]
python -m benchmarks gpu [--tiny --allow-cpu]   ·   python -m benchmarks scaling [--resolutions 32,64] [--tiny]

--quick: training throughput (DCGAN 32×32 and 64×64, WGAN-GP 32×32, gancli fp32/bf16 against plain
PyTorch loops), sampling throughput, peak memory and command-line latency; under ~10 minutes on 2 cores.
--full: the same with more rounds, plus 2-D mode coverage and quality at a fixed CPU budget.
Both print the tables and refresh benchmarks/RESULTS.md (unless --no-write).
gpu: sec/kimg of the stylegan-ffhq-256 and stylegan2-ffhq-256 recipes on the CUDA device there, gancli in
fp32, TF32, bf16 and fp16 against the plain loop, with peak GPU memory; no arm starts after --budget-minutes
(6), so under ~9 minutes of device time (exit status 2 without CUDA). scaling: memory per image and step
time against resolution for stylegan and biggan on the CPU, each point a fresh process, with
benchmarks/scaling.png.
gallery: the README's pictures, one per family (trained from its CPU recipe or reused), with the command,
commit and score of each in docs/images/gallery.json; --readme rewrites README.md's families table from it.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


# Each part refreshes its own block of RESULTS.md, so `--only modes` leaves the other tables alone.
PART_TITLES = {
    "throughput": "Training throughput, sampling and memory",
    "latency": "Command-line latency",
    "modes": "2-D mode coverage",
    "quality": "Quality at a fixed CPU budget",
    "gpu": "GPU training speed: StyleGAN 256² recipes against the plain loop",
    "scaling": "Cost against resolution: memory per image and step time",
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def describe_networks(case) -> str:
    from benchmarks.worker import FAMILIES

    arms = FAMILIES[case.family]
    settings = ([s.replace("=", " = ") for s in (*arms.settings, *case.settings)]
                + [" = ".join([*arms.width_settings, str(case.width)])])
    if case.num_classes:
        settings.append(f"{case.num_classes} classes")
    return f"{case.name}: {case.channels} channel(s), {', '.join(settings)}, z {case.z_dim}, batch {case.batch}"


def throughput_markdown(results) -> tuple[str, str, float]:
    from benchmarks.report import fmt, table
    from benchmarks.worker import FAMILIES

    rows, memory, sampling = [], [], []
    headline, ratio64 = "", float("nan")
    for case_result in results:
        case = case_result.case
        for arm_result in case_result.arms:
            label = arm_result.arm.label
            if arm_result.skipped:
                rows.append((case.name, label, "—", "—", "—", "—", arm_result.skipped))
                continue
            steps = len(arm_result.steps("wall"))
            share = case_result.share_of_peak(arm_result)
            rows.append((
                case.name, label, fmt(arm_result.images_per_second(case.batch)),
                fmt(arm_result.images_per_second(case.batch, "cpu")),
                f"{case_result.ratio(arm_result):.2f}×", f"{case_result.ratio(arm_result, 'cpu'):.2f}×",
                "—" if share != share else f"{share:.0%}",
                f"{steps} steps, paired-round ratio {case_result.paired_ratio(arm_result):.2f}×",
            ))
            memory.append((case.name, label, f"{arm_result.maxrss_mib:.0f}"))
            if arm_result.sampling:
                s = arm_result.sampling
                sampling.append((case.name, s["batch"], fmt(s["images_per_second"]), f"{s['load_seconds'] * 1000:.0f}"))
        gancli = next((a for a in case_result.arms if a.arm.label == "gancli fp32" and not a.skipped), None)
        if gancli is not None and case.resolution == 64:
            base = case_result.baseline()
            ratio64 = case_result.ratio(gancli)
            headline = (
                f"ratio {case.name} gancli fp32 / plain fp32 loop: {ratio64:.2f}× "
                f"({gancli.images_per_second(case.batch):.1f} vs {base.images_per_second(case.batch):.1f} img/s, "
                f"batch {case.batch}; paired-round median {case_result.paired_ratio(gancli):.2f}×; "
                f"by CPU time {case_result.ratio(gancli, 'cpu'):.2f}×)"
            )
    cases = "; ".join(describe_networks(r.case) for r in results)
    families = list(dict.fromkeys(r.case.family for r in results))
    commands = ", ".join(f"`gancli train {f}`" for f in families)
    plain = ", ".join(FAMILIES[f].plain.partition(":")[0].replace(".", "/") + ".py" for f in families)
    body = "\n\n".join([
        "### Training throughput (img/s, median step; ratio = plain fp32 step time / this arm's)\n\n"
        f"Networks: {cases}. gancli runs {commands} (fp32 = `--precision no`, bf16 = `--precision bf16`); "
        f"the plain loops are {plain}. A step is one generator update (WGAN-GP: with its 5 critic updates, each "
        "on a fresh real batch) and img/s = batch / step time in every arm. Warm-up excluded; workers take turns "
        "step by step.\n\n"
        + peak_note()
        + table(("case", "arm", "img/s", "img per CPU-s", "ratio (wall)", "ratio (CPU)", "of conv peak", "notes"), rows),
        "### Sampling throughput (`gancli.load(ckpt).sample(64, seed=i)`, median of 5 after a warm-up)\n\n"
        + table(("model", "batch", "img/s", "load ms"), sampling),
        "### Peak resident memory of each training benchmark (whole worker process, `ru_maxrss`)\n\n"
        + table(("case", "arm", "peak RSS MiB"), memory),
    ])
    return body, headline, ratio64


def peak_note() -> str:
    from benchmarks.throughput import PEAK

    if not PEAK:
        return ""
    return (f"The convolution peak of this run is {PEAK['gflops']:.1f} GFLOP/s ({PEAK['shape']}, "
            f"{PEAK['threads']} threads, counted with torch's FLOP formulas); \"of conv peak\" is each arm's "
            f"achieved GFLOP/s (the FLOPs of one plain-loop step, which does the same mathematics, over the median "
            f"step time) as a share of it.\n\n")


def latency_markdown(results) -> str:
    from benchmarks.latency import TARGET_SECONDS
    from benchmarks.report import table

    rows = [
        (r.command, f"{r.median_s * 1000:.0f}", f"{r.min_s * 1000:.0f}", r.runs,
         "—" if r.command.startswith("python") else ("yes" if r.imports_torch else "no"),
         "—" if r.command.startswith("python") else ("yes" if r.median_s <= TARGET_SECONDS else "no"))
        for r in results
    ]
    return (f"### Command-line latency (subprocess wall time; target ≤ {TARGET_SECONDS * 1000:.0f} ms)\n\n"
            + table(("command", "median ms", "min ms", "runs", "imports torch", "within target"), rows))


def machine_markdown(machine: dict, command: str, seconds: float) -> str:
    from benchmarks.report import table

    rows = [
        ("date", machine["date"]), ("command", f"`{command}`"),
        ("CPU", f"{machine['cpu']} ({machine['cores']} cores usable, torch ISA {machine['isa']}, "
                f"native bf16: {machine['native_bf16']})"),
        ("torch / python", f"{machine['torch']} ({machine['torch_threads']} threads) / {machine['python']}"),
        ("OMP_WAIT_POLICY (all workers)", machine["omp_wait_policy"]),
        ("load average at start → end", f"{machine['load_average']} → {machine.get('load_average_end', '')}"),
        ("wall time of this run", f"{seconds / 60:.1f} min"),
    ]
    return table(("", ""), rows)


def run(args) -> int:
    from benchmarks import latency, throughput
    from benchmarks.machine import describe, load_average
    from benchmarks.report import update_results

    mode = "quick" if args.quick else "full"
    command = "python -m benchmarks " + " ".join(sys.argv[1:])
    only = set(args.only.split(",")) if args.only else None
    wanted = lambda part: only is None or part in only  # noqa: E731
    started = time.perf_counter()
    machine = describe()
    log(f"machine: {machine['cpu']}, {machine['cores']} cores, torch {machine['torch']}, load {machine['load_average']}")
    sections, headline, ratio64 = {}, "", float("nan")

    if wanted("throughput"):
        families = set(args.families.split(",")) if args.families else None
        results = throughput.run(quick=args.quick, native_bf16=machine["native_bf16"] == "yes", progress=log,
                                 families=families)
        sections["throughput"], headline, ratio64 = throughput_markdown(results)
    if wanted("latency"):
        log("latency: gancli --help, gancli plugins list")
        sections["latency"] = latency_markdown(latency.measure(runs=7 if args.quick else 15))
    if not args.quick and wanted("modes"):
        from benchmarks import modes

        sections["modes"] = modes.run(seeds=args.seeds, steps=args.mode_steps, progress=log, jobs=args.jobs).markdown()
    if not args.quick and wanted("quality"):
        from benchmarks import quality

        sections["quality"] = quality.run(budget_minutes=args.budget_minutes, progress=log).markdown()

    machine["load_average_end"] = load_average()
    seconds = time.perf_counter() - started
    machine_table = machine_markdown(machine, command, seconds)
    blocks = {part: f"## {PART_TITLES[part]} (latest run: {mode})\n\n{machine_table}\n\n{body}"
              for part, body in sections.items()}
    print("\n\n".join(blocks.values()))
    if headline:
        print("\n" + headline)
    if not args.no_write:
        ratio = f"{ratio64:.2f}×" if ratio64 == ratio64 else "not run"
        row = (f"| {machine['date']} | `{command}` | {machine['cpu']} | {machine['cores']} | {machine['torch']} | "
               f"{machine['load_average']} | {ratio} |")
        path = update_results(blocks, row, Path(args.results) if args.results else _default_results())
        log(f"wrote {path}")
    return 0


def _default_results() -> Path:
    from benchmarks.report import RESULTS

    return RESULTS


def profile(args) -> int:
    """Where a training step's time goes: torch.profiler over a few steps of one arm."""
    import tempfile

    from benchmarks.throughput import CASES, Arm, Worker, worker_spec, write_images

    case = CASES[("dcgan", args.resolution)]
    arm = Arm(args.arm, args.arm, "no", warmup=2, rounds=1, per_round=args.steps)
    with tempfile.TemporaryDirectory(prefix="gancli-profile-") as tmp:
        tmp = Path(tmp)
        data = write_images(tmp / "images.npz", case)
        out = Path(args.out) if args.out else tmp / "profile.txt"
        spec = worker_spec(case, arm, data, tmp / "run") | {
            "profile_after": arm.warmup, "profile_steps": args.steps, "profile_out": str(out),
        }
        worker = Worker(spec, tmp / "worker.log")
        try:
            worker.run(arm.total_steps)
            worker.finish()
        finally:
            worker.kill()
        print(out.read_text())
    return 0


def main(argv=None) -> int:
    import os

    from benchmarks.machine import WORKER_ENV_DEFAULTS

    for key, value in WORKER_ENV_DEFAULTS.items():  # this process scores models too; set before torch loads
        os.environ.setdefault(key, value)
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run the benchmarks and refresh RESULTS.md")
    size = p_run.add_mutually_exclusive_group(required=True)
    size.add_argument("--quick", action="store_true", help="throughput, sampling, memory, latency (< 10 min)")
    size.add_argument("--full", action="store_true", help="everything, with more rounds (about two hours on 2 cores)")
    p_run.add_argument("--only", help="comma-separated parts: throughput,latency,modes,quality")
    p_run.add_argument("--families", help="throughput: only the cases of these families (e.g. dcgan,sngan,stylegan)")
    p_run.add_argument("--seeds", type=int, default=5, help="seeds per 2-D mode-coverage configuration")
    p_run.add_argument("--jobs", type=int, default=2, help="2-D mode-coverage runs at a time (one thread each)")
    p_run.add_argument("--mode-steps", type=int, help="cap the steps of each 2-D run (default: the recipe's)")
    p_run.add_argument("--budget-minutes", type=float, default=10.0, help="CPU budget per family for the quality table")
    p_run.add_argument("--results", help="RESULTS.md to refresh (default: benchmarks/RESULTS.md)")
    p_run.add_argument("--no-write", action="store_true", help="print only")
    p_prof = sub.add_parser("profile", help="torch.profiler table of a few training steps")
    p_prof.add_argument("--resolution", type=int, choices=(32, 64), default=64)
    p_prof.add_argument("--arm", choices=("gancli", "plain"), default="gancli")
    p_prof.add_argument("--steps", type=int, default=2)
    p_prof.add_argument("--out", help="also keep the table in this file")
    p_gpu = sub.add_parser("gpu", help="StyleGAN 256² recipes on a CUDA device: sec/kimg in 4 precisions, peak memory")
    p_gpu.add_argument("--tiny", action="store_true", help="tiny networks at 32², 2 timed steps (the tests' size)")
    p_gpu.add_argument("--allow-cpu", action="store_true", help="with --tiny: run on the CPU (fp32 and bf16 only)")
    p_gpu.add_argument("--cases", help="comma-separated recipes (default: stylegan-ffhq-256,stylegan2-ffhq-256)")
    p_gpu.add_argument("--precisions", help="comma-separated: fp32,tf32,bf16,fp16 (default: all)")
    p_gpu.add_argument("--warmup", type=int, default=2, help="untimed steps per arm")
    p_gpu.add_argument("--seconds", type=float, default=8.0, help="timed seconds per arm, at least (whole periods)")
    p_gpu.add_argument("--max-steps", type=int, default=64, help="timed steps per arm, at most")
    p_gpu.add_argument("--timeout", type=float, default=150.0, help="seconds before an arm is stopped")
    p_gpu.add_argument("--budget-minutes", type=float, default=6.0,
                       help="start no further arm after this (the table marks the rest not run)")
    p_gpu.add_argument("--results", help="RESULTS.md to refresh (default: benchmarks/RESULTS.md; --tiny: none)")
    p_gpu.add_argument("--no-write", action="store_true", help="print only")
    p_scale = sub.add_parser("scaling", help="memory per image and step time against resolution (CPU), with a plot")
    p_scale.add_argument("--families", help="comma-separated: stylegan,biggan (default: both)")
    p_scale.add_argument("--resolutions", help="comma-separated (default: 32,64,128,256)")
    p_scale.add_argument("--batches", help="the two batch sizes the memory slope is taken between (default: 2,4)")
    p_scale.add_argument("--tiny", action="store_true", help="tiny networks, 2 timed steps (the tests' size)")
    p_scale.add_argument("--warmup", type=int, default=1, help="untimed steps per process")
    p_scale.add_argument("--steps", type=int, default=3, help="timed steps per process")
    p_scale.add_argument("--timeout", type=float, default=3600.0, help="seconds before a process is stopped")
    p_scale.add_argument("--plot", help="the plot (default: benchmarks/scaling.png; --tiny or --no-write: none)")
    p_scale.add_argument("--results", help="RESULTS.md to refresh (default: benchmarks/RESULTS.md; --tiny: none)")
    p_scale.add_argument("--no-write", action="store_true", help="print only (a plot only where --plot names)")
    from benchmarks import gallery

    gallery.add_arguments(sub.add_parser("gallery", help="the README's pictures, each with its command, commit and score"))
    args = parser.parse_args(argv)
    if args.command == "gallery":
        return gallery.main(args)
    if args.command in ("gpu", "scaling"):
        from benchmarks import gpu, scaling

        return (gpu if args.command == "gpu" else scaling).main(args, title=PART_TITLES[args.command])
    return run(args) if args.command == "run" else profile(args)


if __name__ == "__main__":
    sys.exit(main())
