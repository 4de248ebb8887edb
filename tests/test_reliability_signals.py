"""Real processes, real signals: SIGKILL never costs the run; SIGINT/SIGTERM save a checkpoint and exit 130/143."""
from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _reliability_support import TINY_DCGAN, gancli_command, subprocess_env, tiny_images

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

WAIT_S = 180  # generous: these machines are shared and a cold torch import can take many seconds


def _start(run: Path, data: Path, *extra: str, log: Path) -> subprocess.Popen:
    out = open(log, "wb")  # a file, not a pipe: a chatty child never blocks on a full pipe
    return subprocess.Popen(
        gancli_command("train", "dcgan", "--data", data, *TINY_DCGAN, "--out", run, "--sample-every", "0", *extra),
        stdout=out, stderr=subprocess.STDOUT, env=subprocess_env(),
    )


def _wait_for(condition, proc: subprocess.Popen, log: Path, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"gancli exited ({proc.returncode}) before {what}:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")
        time.sleep(0.01)


def _saved_step(last: Path) -> int:
    from gancli import checkpoint as ckpt_io
    from gancli.errors import GancliError

    try:
        return ckpt_io.read(last).step
    except GancliError:
        return -1  # not written yet


def _assert_loadable(last: Path) -> int:
    import torch

    import gancli
    from gancli import checkpoint as ckpt_io

    images = gancli.load(last, device="cpu").sample(2, seed=0)
    assert images.shape == (2, 1, 16, 16) and torch.isfinite(images).all()
    return ckpt_io.read(last).step


@pytest.mark.slow
def test_sigkill_at_random_moments_never_loses_the_run(tmp_path):
    rng = random.Random(int(os.environ.get("GANCLI_TEST_SEED", "3")))
    data = tiny_images(tmp_path / "tiny.npz")
    run = tmp_path / "run"
    last = run / "checkpoints" / "last.safetensors"
    saved = 0
    for attempt in range(3):
        log = tmp_path / f"attempt-{attempt}.log"
        resume = ["--resume"] if attempt else []
        proc = _start(run, data, "--steps", "100000", "--checkpoint-every", "1", "--log-every", "1", *resume, log=log)
        try:
            _wait_for(lambda: _saved_step(last) > saved, proc, log, "a new checkpoint")
            if attempt == 1:
                # aim at the middle of a write: kill as soon as a temporary checkpoint file appears
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline and not any(
                    name.endswith(".tmp") for name in os.listdir(run / "checkpoints")
                ):
                    pass
            else:
                time.sleep(rng.uniform(0.0, 0.4))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(WAIT_S)
        assert proc.returncode == -signal.SIGKILL
        step = _assert_loadable(last)
        assert step > saved  # the checkpoint seen before the kill survived it
        saved = step

    end = saved + 3
    log = tmp_path / "final.log"
    proc = _start(run, data, "--steps", str(end), "--checkpoint-every", "1", "--log-every", "1", "--resume", log=log)
    assert proc.wait(WAIT_S) == 0, log.read_text()[-3000:]
    assert _assert_loadable(last) == end
    # each step logged once: lines a kill left after the checkpoint, or cut short, were dropped on resume
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, end + 1))
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.endswith(".tmp")]


@pytest.mark.slow
def test_sigint_and_sigterm_save_a_checkpoint_and_exit_130_and_143(tmp_path):
    data = tiny_images(tmp_path / "tiny.npz")
    runs = {}
    for sig in (signal.SIGINT, signal.SIGTERM):  # both at once: the slow part is starting Python and torch
        run, log = tmp_path / sig.name, tmp_path / f"{sig.name}.log"
        # no periodic checkpoints: the only checkpoint is the one the signal makes
        runs[sig] = (run, log, _start(run, data, "--steps", "100000", "--checkpoint-every", "0", "--log-every", "1", log=log))
    for sig, (run, log, proc) in runs.items():
        metrics = run / "metrics.jsonl"
        _wait_for(lambda: metrics.exists() and metrics.read_text().count("\n") >= 2, proc, log, "training steps")
        proc.send_signal(sig)
    for sig, (run, log, proc) in runs.items():
        code = proc.wait(WAIT_S)
        output = log.read_text()
        assert code == {signal.SIGINT: 130, signal.SIGTERM: 143}[sig], output[-3000:]
        last = run / "checkpoints" / "last.safetensors"
        found = re.search(rf"stopped by {sig.name} at step (\d+); checkpoint saved: (\S+)", output)
        assert found, output[-3000:]
        assert Path(found.group(2)) == last or Path(found.group(2)).resolve() == last.resolve()
        assert _assert_loadable(last) == int(found.group(1)) >= 2
        assert "Traceback" not in output
