"""What machine a result came from, and the environment every benchmark worker runs in."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# On a shared machine busy OpenMP threads spin while the thread they wait for is descheduled: one
# tanh on 64 KiB measured 24 ms instead of 0.7 ms at load 8 on 2 cores. Sleeping waiters remove that
# noise. Every worker (gancli and the plain loop alike) gets the same setting, so it favours neither.
WORKER_ENV_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def load_average() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def worker_env() -> dict[str, str]:
    env = dict(os.environ)
    for key, value in WORKER_ENV_DEFAULTS.items():
        env.setdefault(key, value)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def describe() -> dict[str, str]:
    """Facts about this machine, read in a child so this process stays free of torch."""
    probe = (
        "import json, torch; print(json.dumps({'torch': torch.__version__, 'threads': torch.get_num_threads(),"
        " 'isa': torch.backends.cpu.get_cpu_capability(),"
        " 'bf16': bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())}))"
    )
    import json

    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=worker_env(), check=True)
    facts = json.loads(out.stdout)
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cores": str(usable_cores()),
        "torch": facts["torch"],
        "torch_threads": str(facts["threads"]),
        "isa": facts["isa"],
        "native_bf16": "yes" if facts["bf16"] else "no",
        "python": platform.python_version(),
        "omp_wait_policy": worker_env().get("OMP_WAIT_POLICY", ""),
        "load_average": load_average(),
    }
