"""`python -m benchmarks gpu` and `python -m benchmarks scaling` at toy sizes on the CPU: the refusal without
CUDA, the whole path of a tiny run down to its RESULTS.md block, the scaling plot (nothing is timed here)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import gpu, scaling  # noqa: E402
from benchmarks.__main__ import main  # noqa: E402
from benchmarks.machine import worker_env  # noqa: E402

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")


@pytest.fixture(autouse=True)
def _worker_env(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # main() sets it for its workers; keep it out of other tests


@no_cuda
def test_gpu_refuses_without_cuda_in_one_line():
    out = subprocess.run([sys.executable, "-m", "benchmarks", "gpu"], capture_output=True, text=True, cwd=REPO,
                         env=worker_env(), timeout=120)
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("no CUDA device: "), out.stderr


def test_gpu_allow_cpu_only_with_tiny(monkeypatch, capsys):
    monkeypatch.setattr(gpu, "cuda_device", lambda: (False, "none here"))
    assert main(["gpu", "--allow-cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("no CUDA device: ")


@pytest.mark.slow
@no_cuda
def test_gpu_tiny_run_on_the_cpu_writes_its_table(tmp_path, capsys):
    results = tmp_path / "RESULTS.md"
    results.write_text("# results\n\nhand-written reading\n")
    rc = main(["gpu", "--tiny", "--allow-cpu", "--cases", "stylegan2-ffhq-256", "--results", str(results)])
    assert rc == 0
    printed = capsys.readouterr().out
    text = results.read_text()
    assert "hand-written reading" in text and "<!-- bench:gpu -->" in text and "<!-- /bench:gpu -->" in text
    block = text.split("<!-- bench:gpu -->")[1]
    assert "## GPU training speed" in block and "(latest run: tiny)" in block
    rows = {tuple(c.strip() for c in line.split("|")[1:3]): line for line in block.splitlines()
            if line.startswith(("| plain |", "| gancli |"))}
    for arm in (("plain", "fp32"), ("plain", "bf16"), ("gancli", "fp32"), ("gancli", "bf16")):
        cells = [c.strip() for c in rows[arm].split("|")[1:-1]]
        assert float(cells[2]) > 0 and float(cells[3]) > 0, rows[arm]  # sec/kimg, img/s
        assert cells[4].endswith("×") and float(cells[6]) > 50 and cells[7] == "2", rows[arm]  # ratio, RSS, steps
    for arm in (("plain", "tf32"), ("gancli", "tf32"), ("gancli", "fp16")):
        assert "not run: no CUDA device" in rows[arm]
    assert "21.6–24.2" in block and "NVlabs/stylegan2-ada-pytorch README.md" in block  # the published figures
    assert "| this run | gancli" in block
    assert "stylegan2-ffhq-256 gancli fp32:" in printed


@pytest.mark.slow
def test_scaling_tiny_run_makes_the_plot(tmp_path):
    plot, results = tmp_path / "scaling.png", tmp_path / "RESULTS.md"
    rc = main(["scaling", "--tiny", "--resolutions", "32", "--plot", str(plot), "--results", str(results)])
    assert rc == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    block = results.read_text().split("<!-- bench:scaling -->")[1]
    assert "![memory per image and step time against resolution](scaling.png)" in block
    for family in ("stylegan", "biggan"):
        line = next(line for line in block.splitlines() if line.startswith(f"| {family} | 32 |"))
        cells = [c.strip() for c in line.split("|")[1:-1]]
        assert cells[2] == "2, 4" and float(cells[6]) > 0, line  # batches, step seconds


def test_scaling_skips_what_a_family_cannot_build():
    (point,) = scaling.run(families=("biggan",), resolutions=(256,), progress=lambda message: None)
    assert not point.ok() and point.skipped.startswith("not run: biggan makes 32, 64, 128")


def test_timed_window_is_whole_lazy_periods():
    from benchmarks.step_worker import StepTimer

    timer = StepTimer({"device": "cpu", "warmup": 2, "min_timed": 4, "max_timed": 12, "seconds": 0.0, "period": 4})
    timer.start()
    done = [timer.tick() for _ in range(6)]
    assert done == [False] * 5 + [True] and len(timer.warmup_walls) == 2 and len(timer.walls) == 4
    assert len(timer.cpus) == 4 and all(cpu >= 0 for cpu in timer.cpus)  # CPU time of the same timed steps
    timer = StepTimer({"device": "cpu", "warmup": 0, "min_timed": 4, "max_timed": 8, "seconds": 1e9, "period": 4})
    timer.start()
    assert [timer.tick() for _ in range(8)] == [False] * 7 + [True]  # the seconds are not reached: max_timed


def test_arm_specs_run_the_recipe_in_each_precision(tmp_path):
    case = next(c for c in gpu.CASES if c.name == "stylegan2-ffhq-256")
    common = dict(tiny=False, device="cuda", data=tmp_path / "x.npz", out=tmp_path / "run", warmup=3, seconds=12.0,
                  max_timed=64)
    fp16 = gpu.arm_spec(case, gpu.GpuArm("gancli", "fp16"), **common)
    argv = fp16["argv"]
    assert argv[argv.index("--precision") + 1] == "fp16" and argv[argv.index("--batch") + 1] == "64"
    assert argv[argv.index("--recipe") + 1].endswith("stylegan2-ffhq-256.toml") and fp16["tf32"] is False
    assert fp16["period"] == 16 and fp16["max_timed"] % 16 == 0
    assert gpu.arm_spec(case, gpu.GpuArm("gancli", "tf32"), **common)["tf32"] is True
    plain = gpu.arm_spec(case, gpu.GpuArm("plain", "bf16"), **common)
    # the plain loop builds the recipe's networks from the recipe's own model table
    assert "model.fmap_base=8192" in plain["settings"] and "model.mbstd_group_size=8" in plain["settings"]
    assert gpu.arm_spec(case, gpu.GpuArm("plain", "fp32"), **{**common, "device": "cpu"})["tf32"] is None


def test_no_arm_starts_once_the_budget_is_spent():
    outcomes = gpu.run(tiny=True, cuda=False, budget_minutes=0.0, progress=lambda message: None)
    assert [o.case.name for o in outcomes] == ["stylegan-ffhq-256", "stylegan2-ffhq-256"]
    assert all(a.skipped and a.skipped.startswith("not run:") for o in outcomes for a in o.arms)
    assert any("--budget-minutes 0" in a.skipped for o in outcomes for a in o.arms)
