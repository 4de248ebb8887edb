"""Load on `gancli serve`: many concurrent requests against the real server on loopback.

    python -m benchmarks.serve_load [--requests 200] [--concurrency 200] [CKPT ...] [--write]

Without CKPT it trains two tiny models first (a StyleGAN and a conditional BigGAN, one step each,
seconds). It starts `gancli serve --port 0` in a subprocess, fires the requests at once from
threads (a mix of the page's calls: seed grids of 16, single downloads, walks, style mixes, model
lists), and reports whether every one was answered without a 5xx, requests/s, latency p50/p99 and
the server's peak RSS (VmHWM) against its RSS before the load. --write puts that table in its
block of benchmarks/RESULTS.md. tests/test_serve_browser.py runs a smaller load through
:func:`hammer` and :func:`serving`.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

REPO = Path(__file__).resolve().parent.parent
URL_LINE = re.compile(r"serving .* at (http://\S+/)")


@contextmanager
def serving(paths: Sequence[Path], *, extra_args: Sequence[str] = (), timeout_s: float = 120.0,
            env: Optional[dict] = None) -> Iterator[tuple[subprocess.Popen, str]]:
    """`gancli serve PATHS --port 0` in a subprocess; yields (process, base URL) once it listens."""
    command = [sys.executable, "-m", "gancli", "serve", *map(str, paths), "--port", "0", *extra_args]
    log = tempfile.TemporaryFile(mode="w+")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            log.seek(0)
            text = log.read()
            match = URL_LINE.search(text)
            if match:
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gancli serve did not start (exit {process.poll()}):\n{text}")
            time.sleep(0.1)
        yield process, match[1]
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak) of a process, in KiB (Linux)."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def page_calls(models: list[dict]) -> list[str]:
    """One round of the page's calls for each served model."""
    calls = ["/api/models"]
    for m in models:
        base = f"/api/models/{m['index']}"
        calls += [f"{base}/grid?start=0&count=16", f"{base}/grid?start=16&count=16&truncation=0.7",
                  f"{base}/image.png?seed=3", f"{base}/walk?a=1&b=2&frames=8"]
        if m.get("w_space"):
            calls.append(f"{base}/style-mix?source=1&destination=2&styles=coarse")
        if m.get("num_classes"):
            calls.append(f"{base}/grid?count=16&class=%230")
    return calls


@dataclass
class LoadResult:
    requests: int
    concurrency: int
    statuses: dict[int, int]
    seconds: float
    p50_ms: float
    p99_ms: float
    rss_before_mib: float
    peak_rss_mib: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500 or status == 0)


def _fetch(url: str) -> tuple[int, float]:
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=300) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError:
        status = 0  # not answered
    return status, time.perf_counter() - started


def hammer(process: subprocess.Popen, base_url: str, *, requests: int, concurrency: int) -> LoadResult:
    """``requests`` calls (the page's mix, in turn) from ``concurrency`` threads released together."""
    with urllib.request.urlopen(base_url + "api/models", timeout=60) as response:
        models = json.load(response)["models"]
    calls = page_calls(models)
    urls = [base_url + calls[i % len(calls)].lstrip("/") for i in range(requests)]
    before = memory_kib(process.pid)["VmRSS"]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(_fetch, urls))
    seconds = time.perf_counter() - started
    peak = memory_kib(process.pid)["VmHWM"]
    statuses: dict[int, int] = {}
    for status, _ in results:
        statuses[status] = statuses.get(status, 0) + 1
    latencies = sorted(t for _, t in results)
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return LoadResult(requests, concurrency, statuses, seconds, pick(0.50), pick(0.99), before / 1024, peak / 1024)


def tiny_models(root: Path) -> list[Path]:
    """A one-step StyleGAN run folder and a one-step conditional BigGAN checkpoint (labelled random images)."""
    import numpy as np
    from PIL import Image

    from gancli import config as cfg
    from gancli.train.loop import train

    rng = np.random.default_rng(0)
    for k, name in enumerate(("Bag", "Shirt", "Sneaker")):
        (root / "data" / name).mkdir(parents=True, exist_ok=True)
        for i in range(8):
            pixels = rng.integers(0, 256, (8, 8), dtype=np.uint8) // (k + 1)
            Image.fromarray(pixels, mode="L").save(root / "data" / name / f"{i}.png")
    settings = {"stylegan": (32, ["z_dim=8", "w_dim=8", "mapping_layers=2", "fmap_base=64", "fmap_max=4"]),
                "biggan": (32, ["g_ch=2", "d_ch=2", "z_dim=8", "shared_dim=6"])}
    out = []
    for family, (resolution, overrides) in settings.items():
        run, family_config = cfg.resolve(
            family, flags={"data": {"source": str(root / "data"), "resolution": resolution, "channels": 1},
                           "train": {"steps": 1, "batch_size": 8, "sample_every": 0, "checkpoint_every": 1}},
            overrides=overrides)
        result = train(run, family_config, out=root / family, show_progress=False)
        out.append(root / family if family == "stylegan" else result.last_checkpoint)
    return out


def markdown(result: LoadResult, command: str, models: str) -> str:
    from benchmarks.machine import cpu_model, usable_cores

    statuses = ", ".join(f"HTTP {s} ×{n}" if s else f"unanswered ×{n}" for s, n in sorted(result.statuses.items()))
    return "\n".join([
        f"## gancli serve under load ({time.strftime('%Y-%m-%d', time.gmtime())}, {usable_cores()}-core "
        f"{cpu_model()})",
        "",
        f"Command: `{command}` ({models}; the server is `gancli serve --port 0` on loopback with its defaults: "
        f"2 jobs on worker threads, torch one job at a time). The requests cycle through the page's calls "
        f"(seed grids of 16, a PNG download, an 8-frame walk, a style mix, the model list) and start together "
        f"from {result.concurrency} threads.",
        "",
        "| requests | concurrent | answered | 5xx | requests/s | p50 latency | p99 latency | server RSS before → peak |",
        "|---|---|---|---|---|---|---|---|",
        f"| {result.requests} | {result.concurrency} | {statuses} | {result.server_errors} | "
        f"{result.per_second:.1f} | {result.p50_ms:.0f} ms | {result.p99_ms:.0f} ms | "
        f"{result.rss_before_mib:.0f} → {result.peak_rss_mib:.0f} MiB |",
    ])


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve_load", description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="what to serve (default: two tiny models made first)")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--write", action="store_true", help="refresh the serve-load block of benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        paths = args.paths or tiny_models(Path(tmp))
        models = "two tiny one-step models: a StyleGAN 32² run folder and a conditional BigGAN 32²" \
            if not args.paths else ", ".join(p.name for p in args.paths)
        with serving(paths) as (process, url):
            result = hammer(process, url, requests=args.requests, concurrency=args.concurrency)
    command = "python -m benchmarks.serve_load " + " ".join(argv if argv is not None else sys.argv[1:])
    text = markdown(result, command.strip(), models)
    print(text)
    if args.write:
        from benchmarks.report import RESULTS, refresh_block

        RESULTS.write_text(refresh_block(RESULTS.read_text(encoding="utf-8"), "serve-load", text), encoding="utf-8")
        print(f"wrote the serve-load block of {RESULTS}", file=sys.stderr)
    return 0 if result.server_errors == 0 and sum(result.statuses.values()) == result.requests else 1


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())
