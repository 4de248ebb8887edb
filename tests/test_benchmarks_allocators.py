"""benchmarks.allocators on a tiny case: every arm runs in its own process and reports its steps and memory."""
from __future__ import annotations

import ctypes.util
import json
import sys

import pytest

TINY = ["model.fmap_base=64", "model.fmap_max=16", "model.z_dim=16", "model.w_dim=16", "model.mapping_layers=2",
        "model.mbstd_group_size=2", "model.grow=false"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="LD_PRELOAD and glibc thresholds: Linux only")
def test_every_arm_reports_its_timed_steps_and_peak_memory(capsys):
    from benchmarks import allocators

    arms = ["plain", "gancli", "gancli-keep"] + (["gancli-jemalloc", "plain-jemalloc"]
                                                  if ctypes.util.find_library("jemalloc") else [])
    args = ["--resolution", "32", "--batch", "2", "--steps", "1", "--arms", ",".join(arms)]
    assert allocators.main(args + [a for s in TINY for a in ("--set", s)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [line["arm"] for line in lines] == arms
    for line in lines:
        assert line["error"] is None, line
        assert len(line["cpus"]) == 1 and line["cpus"][0] > 0 and line["maxrss_mib"] > 100
