"""train.keep_freed_memory and train.allocator: a freed large tensor's pages are reused by the next allocation, not
faulted in again."""
from __future__ import annotations

import json
import os
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
for _ in range(16):  # steps that each hold 512 MiB of activations at once, then free them
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
    # The kept heap settles within a few steps, but glibc's best fit can leave a hole too small for the largest
    # block now and then (the heap grows by that block, the page faults of one step), so judge the late steps
    # together: most are fault-free and all of them fault a small share of what the default faults.
    late_kept, late_default = kept[-8:], default[-8:]
    assert sum(n < pages // 100 for n in late_kept) >= 4
    assert sum(late_kept) < sum(late_default) // 10


def test_holding_freed_memory_is_a_choice_not_the_default():
    """It trades peak memory for time (RESULTS.md: +8% for StyleGAN, +42% for StyleGAN2 at 256²)."""
    from gancli.config import TrainConfig

    assert TrainConfig().keep_freed_memory is False
    assert TrainConfig(keep_freed_memory=True).keep_freed_memory is True


def _has(library: str) -> bool:
    import ctypes.util

    return ctypes.util.find_library(library) is not None


needs_jemalloc = pytest.mark.skipif(not sys.platform.startswith("linux") or not _has("jemalloc"),
                                    reason="libjemalloc2 is not installed (.ci/run installs it)")
needs_tcmalloc = pytest.mark.skipif(not sys.platform.startswith("linux") or not _has("tcmalloc_minimal"),
                                    reason="libtcmalloc-minimal4 is not installed (.ci/run installs it)")

RESTART = """
import sys
from gancli.train.allocator import active, restart_with
print(sys.argv[1], active(sys.argv[1]), flush=True)
restart_with(sys.argv[1])  # the first process is replaced here; the second returns and goes on
print("after", active(sys.argv[1]), flush=True)
"""


@pytest.mark.parametrize("allocator", [pytest.param("jemalloc", marks=needs_jemalloc),
                                       pytest.param("tcmalloc", marks=needs_tcmalloc)])
def test_restart_with_reexecutes_the_command_once_with_the_allocator_preloaded(allocator):
    out = subprocess.run([sys.executable, "-c", RESTART, allocator], capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", **_pythonpath()})
    assert out.stdout.split() == [allocator, "False", allocator, "True", "after", "True"]


@needs_jemalloc
def test_jemalloc_as_preloaded_reuses_a_steps_freed_blocks_without_page_faults():
    import ctypes.util

    env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", **_pythonpath(),
           "LD_PRELOAD": ctypes.util.find_library("jemalloc"), "GANCLI_ALLOCATOR": "jemalloc"}
    from gancli.train.allocator import PRELOADS

    env.update(PRELOADS["jemalloc"][1])
    out = subprocess.run([sys.executable, "-c", PROBE, "default"], capture_output=True, text=True, check=True,
                         env={**env, "HOME": os.environ.get("HOME", "/tmp")})
    kept = json.loads(out.stdout.strip().splitlines()[-1])
    pages = 512 * 2**20 // 4096
    assert all(n < pages // 100 for n in kept[-2:])


@needs_jemalloc
def test_gancli_train_runs_under_the_allocator_it_was_asked_for(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("GANCLI_ALLOCATOR", None)
    out = subprocess.run([sys.executable, "-m", "gancli", "train", "gan", "--data", "ring8", "--steps", "3",
                          "--out", str(tmp_path / "run"), "--set", "train.allocator=jemalloc"],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert "not in effect" not in out.stderr  # the trainer found jemalloc mapped in its process
    assert "allocator = \"jemalloc\"" in (tmp_path / "run" / "config.toml").read_text()


def test_a_missing_allocator_library_is_one_clear_line_and_nothing_is_written(cli, tmp_path, monkeypatch):
    import ctypes.util

    monkeypatch.delenv("GANCLI_ALLOCATOR", raising=False)
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    result = cli("train", "gan", "--data", "ring8", "--steps", "2", "--out", tmp_path / "run",
                 "--set", "train.allocator=tcmalloc")
    assert result.exit_code == 2
    message = [line for line in result.output.splitlines() if line.strip()]
    assert len(message) == 1 and "libtcmalloc_minimal is not installed" in message[0], result.output
    assert not (tmp_path / "run").exists()


def test_the_trainer_says_when_the_allocator_it_was_given_is_not_in_effect(tmp_path, capsys):
    from gancli import config as cfg
    from gancli.train.loop import train

    run, family_config = cfg.resolve("gan", flags={"data": {"source": "ring8"}, "train": {"steps": 2}},
                                     overrides=["train.allocator=tcmalloc"])
    train(run, family_config, out=tmp_path / "run", resume=False)
    assert "train.allocator=tcmalloc is not in effect" in capsys.readouterr().err  # pytest runs on the system's
