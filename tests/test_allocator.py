"""train.keep_freed_memory: a freed large tensor's pages are reused by the next allocation, not faulted in again."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import json, resource, sys
import torch
if sys.argv[1] == "keep":
    from gancli.train.allocator import keep_freed_memory
    assert keep_freed_memory()
faults = []
for _ in range(6):  # steps that each hold 512 MiB of activations at once, then free them
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    held = [torch.ones(n * 2**18) for n in (64, 128, 96, 160, 64)]
    del held
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps(faults))
"""


def faults(mode: str) -> list[int]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True,
                         env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", **_pythonpath()})
    return json.loads(out.stdout.strip().splitlines()[-1])


def _pythonpath() -> dict[str, str]:
    import os

    return {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_kept_memory_is_reused_without_page_faults_where_the_default_faults_it_in_every_time():
    pages = 512 * 2**20 // 4096  # a step's activations in 4 KiB pages
    default, kept = faults("default"), faults("keep")
    assert all(n > pages // 2 for n in default)  # glibc maps and unmaps blocks this large every step
    assert all(n < pages // 100 for n in kept[-2:])  # once the heap holds a step's blocks, they are reused


def test_holding_freed_memory_is_a_choice_not_the_default():
    """It trades peak memory for time (RESULTS.md: +8% for StyleGAN, +42% for StyleGAN2 at 256²)."""
    from gancli.config import TrainConfig

    assert TrainConfig().keep_freed_memory is False
    assert TrainConfig(keep_freed_memory=True).keep_freed_memory is True
