"""Start-up latency of the command line, and whether a command pulled in torch."""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.machine import worker_env

COMMANDS = {
    "gancli --help": ["--help"],
    "gancli plugins list": ["plugins", "list"],
}
TARGET_SECONDS = 0.300

_TORCH_PROBE = """
import sys
from gancli.cli import main
sys.argv = ["gancli", *{args!r}]
try:
    main()
except SystemExit:
    pass
sys.__stderr__.write("\\nTORCH_IMPORTED=%s\\n" % ("torch" in sys.modules))
"""


@dataclass
class Latency:
    command: str
    median_s: float
    min_s: float
    runs: int
    imports_torch: bool


def gancli_executable() -> list[str]:
    script = Path(sys.executable).parent / "gancli"
    return [str(script)] if script.exists() else [sys.executable, "-m", "gancli"]


def _wall(argv: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=worker_env(), check=True)
    return time.perf_counter() - t


def imports_torch(args: list[str]) -> bool:
    out = subprocess.run([sys.executable, "-c", _TORCH_PROBE.format(args=args)], capture_output=True, text=True,
                         env=worker_env())
    return "TORCH_IMPORTED=True" in out.stderr


def measure(runs: int = 7) -> list[Latency]:
    results = []
    interpreter = [sys.executable, "-c", "pass"]
    _wall(interpreter)
    floor = [_wall(interpreter) for _ in range(runs)]
    results.append(Latency("python -c pass (interpreter floor)", statistics.median(floor), min(floor), runs, False))
    for name, args in COMMANDS.items():
        argv = gancli_executable() + args
        _wall(argv)  # warm the file cache
        times = [_wall(argv) for _ in range(runs)]
        results.append(Latency(name, statistics.median(times), min(times), runs, imports_torch(args)))
    return results


def as_json(results: list[Latency]) -> str:
    return json.dumps([r.__dict__ for r in results])
