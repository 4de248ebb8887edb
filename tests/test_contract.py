"""Plugin contract 2.0: phases, D-step schedules, accumulation, growth, processes, precision, resume."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import gancli
from gancli import checkpoint as ckpt_io
from gancli import config as cfg
from gancli import plugins
from gancli.train.loop import train

HERE = Path(__file__).resolve().parent


def install_toy_family(root: Path) -> None:
    dist = root / "gancli_plugin_contract_toy-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: gancli-plugin-contract-toy\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[gancli.plugins]\ncontract-toy = _contract_family:FAMILY\n")


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """The toy family installed as a plugin (also for subprocesses, through PYTHONPATH)."""
    site = tmp_path / "site"
    install_toy_family(site)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), str(HERE), os.environ.get("PYTHONPATH", "")]))
    plugins.refresh()
    points = np.random.default_rng(0).normal(size=(96, 3)).astype(np.float32) * 0.5 + 1.0  # 3-D: no lab
    np.savez(tmp_path / "points.npz", points=points)
    yield tmp_path / "points.npz"
    plugins.refresh()


def _train_toy(data: Path, out: Path, *, steps: int, resume: bool = False, overrides=(), train_flags=None,
               scaler=None):
    flags = {"data": {"source": str(data)},
             "train": {"steps": steps, "batch_size": 8, "log_every": 1, "sample_every": 0, "checkpoint_every": 2,
                       **(train_flags or {})}}
    base = None
    if resume:
        from gancli.train.resume import resume_tree

        base = resume_tree(out / "checkpoints" / "last.safetensors")
    run, family_config = cfg.resolve("contract-toy", base=base, flags=flags, overrides=list(overrides))
    return train(run, family_config, out=out, resume=resume, show_progress=False, scaler=scaler)


def _tensors(path: Path, prefix: str = "") -> dict[str, torch.Tensor]:
    return ckpt_io.read(path).tensors(prefix)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch_two(data: Path, out: Path, *, steps: int, resume: bool = False, extra=(), family="contract-toy",
                module="gancli", env=None, timeout=300) -> subprocess.CompletedProcess:
    """Two CPU processes through accelerate launch; ``module`` "_instrumented_cli" also leaves each
    process's weights (and with GANCLI_TEST_SCALER=1 a CPU GradScaler's scale) in OUT/rank-R.safetensors."""
    accelerate = Path(sys.executable).with_name("accelerate")
    cmd = [
        str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
        "-m", module, "train", family, "--data", str(data), "--steps", str(steps), "--batch", "8",
        "--log-every", "1", "--checkpoint-every", "2", "--sample-every", "0", "--out", str(out), *extra,
    ]
    if resume:
        cmd.append("--resume")
    env = {**os.environ, "PYTHONFAULTHANDLER": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        [str(HERE), os.environ.get("PYTHONPATH", "")]), **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


def _ranks(out: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    from safetensors.torch import load_file

    return load_file(out / "rank-0.safetensors"), load_file(out / "rank-1.safetensors")


def test_toy_family_runs_its_phases_at_their_intervals(toy, tmp_path):
    import json

    _train_toy(toy, tmp_path / "run", steps=4)
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3, 4]
    assert {"d/gp", "d/loss", "dreg/r1", "g/loss", "greg/wnorm"} <= set(lines[0])
    # n_critic = 2 critic steps per iteration, each on a fresh real batch; Dreg reuses the last one
    assert lines[-1]["images_seen"] == 4 * 2 * 8


def test_one_process_at_batch_b_equals_two_processes_at_half_each(toy, tmp_path):
    """Gradient penalty, n_critic 2, lazy R1 and G passes, calls into G's sub-modules and spectral norm in D:
    the same weights with one process and with two (counter-based draws, trainer-owned all-reduce)."""
    from _contract_family import HOOK_CALLS

    HOOK_CALLS.clear()
    overrides = ["spectral_norm=true", "record_hooks=true"]
    single = _train_toy(toy, tmp_path / "one", steps=4, overrides=overrides)
    done = _launch_two(toy, tmp_path / "two", steps=4, extra=["--set", "spectral_norm=true", "--set", "record_hooks=true"])
    assert done.returncode == 0, done.stderr[-3000:]
    one = _tensors(single.last_checkpoint)
    two = _tensors(tmp_path / "two" / "checkpoints" / "last.safetensors")
    for name in [n for n in one if n.startswith(("G.", "D."))]:
        torch.testing.assert_close(two[name], one[name], rtol=1e-4, atol=1e-5, msg=name)
    # the optimizers saw the mean of the two processes' gradients, i.e. the whole batch's (Adam would hide
    # a sum: it is nearly blind to the gradients' scale, so the weights alone cannot tell)
    for rank in (0, 1):
        torch.testing.assert_close(two[f"state.rank.{rank}.objective.gradient_norms"],
                                   one["state.rank.0.objective.gradient_norms"], rtol=1e-4, atol=0)
    # every process holds the same weights and spectral-norm vectors (u, v) after training
    assert torch.equal(two["state.rank.0.objective.weights"], two["state.rank.1.objective.weights"])
    assert any("_u" in n for n in one)
    # and every process drew its own global random state (noise, dropout)
    assert not torch.equal(two["state.rank.0.rng.torch"], two["state.rank.1.rng.torch"])

    # two processes resume bit-exactly
    resumed = tmp_path / "two-resumed"
    assert _launch_two(toy, resumed, steps=2, extra=["--set", "spectral_norm=true"]).returncode == 0
    done = _launch_two(toy, resumed, steps=4, resume=True)
    assert done.returncode == 0, done.stderr[-3000:]
    again = _tensors(resumed / "checkpoints" / "last.safetensors")
    for name, value in two.items():
        if not name.endswith(".gradient_norms"):  # recorded only by the first run
            assert torch.equal(again[name], value), name


def test_a_grad_scaler_trains_the_fp32_weights_and_backs_off_when_gradients_overflow(toy, tmp_path):
    plain = _tensors(_train_toy(toy, tmp_path / "plain", steps=3).last_checkpoint)
    # power-of-two scales: scaling and unscaling fp32 gradients is exact, so the weights are the same
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=1)
    scaled = _tensors(_train_toy(toy, tmp_path / "scaled", steps=3, scaler=scaler).last_checkpoint)
    for name in [n for n in plain if n.startswith(("G.", "D."))]:
        assert torch.equal(scaled[name], plain[name]), name
    # G phase, D and Dreg each stepped every time: the scale grew once per optimizer step
    assert scaler.get_scale() > 2.0**10

    # a D loss of about 16 at a scale of 2^127 overflows fp32 as an fp16 loss does at 2^16: those steps
    # are skipped and the scale halves each time until the scaled loss fits; training goes on
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**127, growth_interval=1000)
    result = _train_toy(toy, tmp_path / "overflow", steps=3, scaler=scaler, overrides=["d_loss_gain=8"])
    backed_off = ckpt_io.read(result.last_checkpoint)
    assert backed_off.state["scaler"]["scale"] == scaler.get_scale() < 2.0**127
    assert backed_off.state["nonfinite"] == 0  # the scaler's own back-off is not a skipped step
    assert all(torch.isfinite(v).all() for k, v in backed_off.tensors("").items() if k.startswith(("G.", "D.")))
    assert not torch.equal(backed_off.tensors("")["D.out.weight"], plain["D.out.weight"])


@pytest.mark.slow
def test_a_failure_on_the_main_process_stops_every_process(toy, tmp_path):
    done = _launch_two(toy, tmp_path / "run", steps=2, extra=["--set", "fail_sampling_on_main=true"])
    assert done.returncode != 0
    # both processes report the same error instead of the second waiting in the next collective
    assert done.stderr.count("deliberate failure while sampling on the main process") >= 2, done.stderr[-3000:]


def test_a_non_finite_loss_on_one_of_two_processes_under_a_scaler_skips_that_step_on_both(toy, tmp_path):
    """Under a grad scaler, process 1 alone sees a NaN D loss at step 1: both processes skip that same
    step (no hang: a timeout fails the test) and keep identical weights and scales; the skipped step's
    checkpoint (step 2) and metrics line are still written."""
    import json

    out = tmp_path / "run"
    done = _launch_two(toy, out, steps=4, module="_instrumented_cli", env={"GANCLI_TEST_SCALER": "1"},
                       extra=["--set", "nan_at=[1]", "--set", "nan_rank=1", "--max-nonfinite", "1"], timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "step 1: skipped, the D loss on another process not finite" in done.stderr, done.stderr[-3000:]
    rank0, rank1 = _ranks(out)
    assert rank0.keys() == rank1.keys() and "scale" in rank0
    for name, value in rank0.items():
        assert torch.equal(rank1[name], value), name
    assert (out / "checkpoints" / "step-000002.safetensors").exists()
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3, 4]
    ckpt = ckpt_io.read(out / "checkpoints" / "last.safetensors")
    assert ckpt.state["nonfinite"] == 1 and "scaler" in ckpt.state
    # the skipped iteration stepped no optimizer: 3 iterations × n_critic 2 D steps (+ 2 lazy R1 steps, at
    # steps 0 and 2, for every D weight but the output bias, which R1's input gradient does not reach), 3 G steps
    tensors = ckpt.tensors("")
    d_steps = {float(v) for k, v in tensors.items() if k.startswith("state.opt.D.") and k.endswith(".step")}
    g_steps = {float(v) for k, v in tensors.items() if k.startswith("state.opt.G.synthesis") and k.endswith(".step")}
    assert float(tensors["state.opt.D.out.bias.step"]) == 6.0
    assert d_steps == {6.0, 8.0} and g_steps == {3.0}, (d_steps, g_steps)


def test_a_failure_on_a_non_main_process_stops_every_process_with_its_message(toy, tmp_path):
    done = _launch_two(toy, tmp_path / "run", steps=4, extra=["--set", "fail_at=1", "--set", "fail_rank=1"],
                       timeout=180)
    assert done.returncode != 0
    # the main process stops with process 1's message instead of waiting for it in the next collective
    assert "process 1 failed: " in done.stderr, done.stderr[-3000:]
    assert done.stderr.count("deliberate failure in d_loss on process 1") >= 2, done.stderr[-3000:]
    assert not (tmp_path / "run").exists()  # a new run that failed before its first checkpoint leaves nothing


def test_a_frozen_discriminator_parameter_stays_frozen_through_g_phases_and_growth(toy, tmp_path):
    from _contract_family import FROZEN_SEEN

    FROZEN_SEEN.clear()
    result = _train_toy(toy, tmp_path / "run", steps=4, overrides=["freeze_d_input_bias=true", "grow_at=[2]"])
    assert FROZEN_SEEN and not any(FROZEN_SEEN)  # every D pass after a G phase still sees it frozen
    bias = _tensors(result.last_checkpoint)["D.inp.bias"]
    assert torch.equal(bias, torch.full_like(bias, 0.25))
    assert not any(n.startswith("state.opt.D.inp.bias") for n in _tensors(result.last_checkpoint))


@pytest.mark.slow
def test_two_processes_grow_a_progan_through_a_stage_change_with_identical_weights(tmp_path):
    from _reliability_support import tiny_images

    data = tiny_images(tmp_path / "tiny.npz", n=64)
    out = tmp_path / "run"
    # 24 images per phase at batch 8: 4×4 for steps 0–2, the 8×8 fade-in from step 3
    done = _launch_two(data, out, steps=5, family="progan", module="_instrumented_cli", timeout=240, extra=[
        "--resolution", "16", "--set", "z_dim=6", "--set", "fmap_base=32", "--set", "fmap_max=8",
        "--set", "kimg_per_phase=0.024", "--set", "mbstd_group_size=4"])
    assert done.returncode == 0, done.stderr[-3000:]
    rank0, rank1 = _ranks(out)
    assert any(".b8." in k or "8x8" in k or "res8" in k or ".1." in k for k in rank0)  # grown past 4×4
    assert float(rank0["G.alpha"]) < 1.0  # in the fade-in
    assert rank0.keys() == rank1.keys()
    for name, value in rank0.items():
        assert torch.equal(rank1[name], value), name


def test_accumulation_over_k_micro_batches_equals_one_batch(toy, tmp_path):
    one = _train_toy(toy, tmp_path / "k1", steps=3)
    four = _train_toy(toy, tmp_path / "k4", steps=3, train_flags={"accumulate": 4})
    a, b = _tensors(one.last_checkpoint), _tensors(four.last_checkpoint)
    for name in [n for n in a if n.startswith(("G.", "D."))]:
        torch.testing.assert_close(b[name], a[name], rtol=1e-4, atol=1e-5, msg=name)


def test_accumulated_micro_batches_give_the_optimizer_the_whole_batchs_gradient(toy, tmp_path):
    from _contract_family import HOOK_CALLS

    norms = {}
    for k in (1, 4):
        HOOK_CALLS.clear()
        _train_toy(toy, tmp_path / f"k{k}", steps=1, overrides=["record_hooks=true"], train_flags={"accumulate": k})
        norms[k] = [norm for _, norm in HOOK_CALLS]
    # step 0's first D step starts from the same weights either way: the mean over 4 micro-batches of 2
    # is the gradient of the batch of 8 (a sum would be 4 times it, which Adam's weights would not show)
    assert norms[4][0] == pytest.approx(norms[1][0], rel=1e-5)
    assert len(norms[4]) == len(norms[1])


def test_a_skipped_step_changes_no_weight_average_or_optimizer_state(toy, tmp_path):
    """A D loss that is not finite at step 1: that iteration steps no optimizer, runs no after-step hook
    and no D or G weight average, so its checkpoint (step 2) holds exactly what step 1's did."""
    run = tmp_path / "run"
    _train_toy(toy, run, steps=3, overrides=["nan_at=[1]"],
               train_flags={"checkpoint_every": 1, "keep_checkpoints": 5, "max_nonfinite": 1, "ema": True,
                            "ema_discriminator": True})
    before = _tensors(run / "checkpoints" / "step-000001.safetensors")
    after = _tensors(run / "checkpoints" / "step-000002.safetensors")
    kept = [n for n in before if n.startswith(("G.", "D.", "G_ema.", "D_ema.", "state.opt."))]
    assert any(n.startswith("D_ema.") for n in kept) and any(n.startswith("state.opt.D.") for n in kept)
    for name in kept:
        assert torch.equal(after[name], before[name]), name
    assert ckpt_io.read(run / "checkpoints" / "step-000002.safetensors").state["nonfinite"] == 1
    third = _tensors(run / "checkpoints" / "step-000003.safetensors")
    assert not torch.equal(third["D.out.weight"], after["D.out.weight"])  # and training goes on


def test_accumulation_must_divide_the_batch(toy, tmp_path):
    from gancli.errors import GancliError

    with pytest.raises(GancliError, match="divisible by processes × train.accumulate"):
        _train_toy(toy, tmp_path / "run", steps=1, train_flags={"accumulate": 3})


def test_resume_is_bit_exact_with_n_critic_penalty_and_lazy_passes(toy, tmp_path):
    averages = {"ema": True, "ema_discriminator": True}
    straight = _train_toy(toy, tmp_path / "straight", steps=6, train_flags=averages)
    _train_toy(toy, tmp_path / "resumed", steps=3, train_flags={**averages, "checkpoint_every": 3})
    resumed = _train_toy(toy, tmp_path / "resumed", steps=6, resume=True, train_flags=averages)
    a, b = _tensors(straight.last_checkpoint), _tensors(resumed.last_checkpoint)
    assert set(a) == set(b) and "D_ema.out.weight" in a
    assert not torch.equal(a["D_ema.out.weight"], a["D.out.weight"])
    for name, value in a.items():
        assert torch.equal(b[name], value), name


def test_a_growing_model_gains_parameters_mid_run_and_resumes_mid_growth(toy, tmp_path):
    settings = ["grow_at=[2, 4]"]
    straight = _train_toy(toy, tmp_path / "straight", steps=6, overrides=settings, train_flags={"ema": True})
    final = _tensors(straight.last_checkpoint)
    assert {"G.synthesis.extra.0.weight", "G.synthesis.extra.1.weight", "D.extra.1.weight"} <= set(final)
    assert "G_ema.synthesis.extra.1.weight" in final
    # a checkpoint written at the step a layer appears holds that layer, and loads strictly
    at_growth = ckpt_io.read(tmp_path / "straight" / "checkpoints" / "step-000004.safetensors")
    assert at_growth.has("G.synthesis.extra.1.") and gancli.load(at_growth.path, device="cpu")
    # the grid at the end of every stage, and all of them in growth.gif
    from PIL import Image

    stages = sorted(p.name for p in (tmp_path / "straight" / "samples").glob("stage-*.png"))
    assert stages == ["stage-00-0_extra_layers.png", "stage-01-1_extra_layers.png",
                      "stage-02-2_extra_layers_(step_6).png"]
    assert Image.open(tmp_path / "straight" / "growth.gif").n_frames == 3
    # the layers that appeared mid-run have optimizer state, found by name
    assert "state.opt.G.synthesis.extra.1.weight.exp_avg" in final
    assert "state.opt.D.extra.0.weight.exp_avg" in final

    # stop mid-growth (one extra layer), resume: bit-exact, the builder grows to the checkpoint's phase
    _train_toy(toy, tmp_path / "resumed", steps=3, overrides=settings,
               train_flags={"ema": True, "checkpoint_every": 3})
    middle = ckpt_io.read(tmp_path / "resumed" / "checkpoints" / "last.safetensors")
    assert middle.has("G.synthesis.extra.0.") and not middle.has("G.synthesis.extra.1.")
    pipe = gancli.load(middle.path, device="cpu")  # sampling a mid-growth checkpoint loads strictly
    assert len(pipe.generator.synthesis.extra) == 1 and torch.isfinite(pipe.sample(4, seed=0)).all()
    resumed = _train_toy(toy, tmp_path / "resumed", steps=6, resume=True, overrides=settings,
                         train_flags={"ema": True})
    again = _tensors(resumed.last_checkpoint)
    resumed_stages = sorted(p.name for p in (tmp_path / "resumed" / "samples").glob("stage-*.png"))
    assert [name.split("-", 2)[2] for name in resumed_stages] == [name.split("-", 2)[2] for name in stages]
    assert set(again) == set(final)
    for name, value in final.items():
        assert torch.equal(again[name], value), name

    # stop exactly where a stage ends (the second layer appears at step 4), resume: that stage keeps its frame
    _train_toy(toy, tmp_path / "at-boundary", steps=4, overrides=settings, train_flags={"ema": True})
    _train_toy(toy, tmp_path / "at-boundary", steps=6, resume=True, overrides=settings, train_flags={"ema": True})
    frames = sorted((tmp_path / "at-boundary" / "samples").glob("stage-*.png"))
    assert [p.name for p in frames] == stages
    for path in frames:  # the same grids as the uninterrupted run's
        straight_frame = tmp_path / "straight" / "samples" / path.name
        assert np.array_equal(np.asarray(Image.open(path)), np.asarray(Image.open(straight_frame))), path.name
    assert Image.open(tmp_path / "at-boundary" / "growth.gif").n_frames == 3


def test_after_backward_sees_summed_gradients_before_every_optimizer_step(toy, tmp_path):
    from _contract_family import HOOK_CALLS

    HOOK_CALLS.clear()
    _train_toy(toy, tmp_path / "run", steps=2, overrides=["record_hooks=true"], train_flags={"accumulate": 2})
    phases = [name for name, _ in HOOK_CALLS]
    # step 0: D twice, Dreg, G, Greg; step 1: D twice, G (the lazy passes run every second step)
    assert phases == ["D", "D", "Dreg", "G", "Greg", "D", "D", "G"]
    assert all(norm > 0 for _, norm in HOOK_CALLS)


def test_launcher_precision_is_honoured_when_no_flag_is_given(toy, tmp_path, monkeypatch):
    import tomllib

    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    _train_toy(toy, tmp_path / "launcher", steps=1)
    assert tomllib.loads((tmp_path / "launcher" / "config.toml").read_text())["train"]["precision"] == "bf16"
    _train_toy(toy, tmp_path / "flag", steps=1, train_flags={"precision": "no"})
    assert tomllib.loads((tmp_path / "flag" / "config.toml").read_text())["train"]["precision"] == "no"


def test_a_gradient_overflow_under_a_scaler_skips_the_step_and_backs_the_scale_off():
    from gancli.train.gradients import backward, optimizer_step

    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    p = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.Adam([p], lr=0.1)
    backward((p * 1e35).sum(), scaler)  # finite loss, but scaled gradients overflow
    assert not optimizer_step(opt, [p], scaler=scaler, after_backward=lambda: None)
    assert scaler.get_scale() == 2.0**15 and torch.equal(p.detach(), torch.ones(3))
    opt.zero_grad()
    backward(p.sum(), scaler)
    assert optimizer_step(opt, [p], scaler=scaler, after_backward=lambda: None)
    assert not torch.equal(p.detach(), torch.ones(3))
    # without a scaler a non-finite gradient skips the step too
    q = torch.nn.Parameter(torch.ones(2))
    (q * float("nan")).sum().backward()
    assert not optimizer_step(torch.optim.SGD([q], lr=1.0), [q], scaler=None, after_backward=lambda: None)
    assert torch.equal(q.detach(), torch.ones(2))


class _DtypeRecordingCritic(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 1)
        self.dtypes: list[torch.dtype] = []

    def forward(self, x, y=None):
        out = self.linear(x)
        self.dtypes.append(out.dtype)
        return out.squeeze(1) * 1e4  # large scores: their fp16 input gradients times a loss scale overflow


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_penalties_run_the_critic_in_full_precision_under_autocast(dtype):
    from gancli.objective import Step
    from gancli.regularizers import gradient_penalty, r1_penalty

    critic = _DtypeRecordingCritic()
    real, fake = torch.randn(8, 4), torch.randn(8, 4)
    s = Step(index=0, real=real, labels=None, G=torch.nn.Identity(), D=critic, z_dim=4, num_classes=0,
             autocast=lambda: torch.autocast("cpu", dtype=dtype))
    s.discriminate(real)
    assert critic.dtypes[-1] == dtype  # the ordinary forward is in low precision
    with s.autocast():  # even inside an autocast block, as the objective's loss code may be
        gp = gradient_penalty(s.critic(), real, fake, eps=s.rand(1))
        r1 = r1_penalty(s.critic(), real)
    assert critic.dtypes[-2:] == [torch.float32, torch.float32]
    assert torch.isfinite(gp) and torch.isfinite(r1) and gp.dtype == torch.float32


def test_counter_based_draws_do_not_depend_on_how_the_batch_is_split():
    from gancli.objective import Step

    def step(**kw):
        return Step(index=3, real=None, labels=None, G=torch.nn.Identity(), D=torch.nn.Identity(), z_dim=5,
                    num_classes=10, seed=7, phase_index=1, device=torch.device("cpu"), **kw)

    whole = step(batch_size=8)
    z, y = whole.latents(), whole.fake_labels()
    parts = [step(batch_size=2, rank=r, world_size=2, micro=k, accumulate=2) for r in range(2) for k in range(2)]
    drawn = [(p.latents(), p.fake_labels()) for p in parts]
    assert torch.equal(torch.cat([d[0] for d in drawn]), z)
    assert torch.equal(torch.cat([d[1] for d in drawn]), y)
    # the next call of the same step is a new draw; another step draws other numbers
    assert not torch.equal(whole.latents(), z)
    assert not torch.equal(step(batch_size=8, repeat=1).latents(), z)


def test_optimizer_state_is_restored_after_placement_in_the_parameters_layout():
    from gancli.train.state import load_optimizer_state, optimizer_state

    conv = torch.nn.Conv2d(3, 4, 3).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(conv.parameters(), foreach=True)
    conv(torch.randn(2, 3, 8, 8).contiguous(memory_format=torch.channels_last)).sum().backward()
    opt.step()
    tensors, meta = optimizer_state(opt, conv, "opt")
    fresh = torch.nn.Conv2d(3, 4, 3).to(memory_format=torch.channels_last)
    fresh_opt = torch.optim.Adam(fresh.parameters(), foreach=True)
    load_optimizer_state(fresh_opt, fresh, "opt", {k: v.contiguous() for k, v in tensors.items()}, meta)
    state = fresh_opt.state[fresh.weight]
    assert state["exp_avg"].stride() == fresh.weight.stride()  # moments shaped like their parameters
    assert state["step"].device.type == "cpu"
    assert torch.equal(state["exp_avg"], opt.state[conv.weight]["exp_avg"])


def test_checkpoints_of_format_1_sample_but_do_not_resume(tiny_run, tmp_path):
    """A checkpoint written before contract 2.0 still loads for sampling; resuming it is one clear error."""
    from safetensors.torch import load_file, save_file

    from gancli.errors import GancliError
    from gancli.train.resume import check_resumable_checkpoint

    ckpt = ckpt_io.read(tiny_run)
    old = tmp_path / "old.safetensors"
    save_file(load_file(str(tiny_run)), str(old), metadata={**ckpt.metadata, "gancli.format": "1"})
    assert torch.isfinite(gancli.load(old, device="cpu").sample(2, seed=0)).all()
    run, _ = cfg.resolve("dcgan", base=ckpt.config)
    with pytest.raises(GancliError, match="cannot be resumed by this gancli"):
        check_resumable_checkpoint(ckpt_io.read(old), run, ckpt.spec)


def test_resume_is_bit_exact_for_a_lazily_loaded_image_folder_with_workers(tmp_path, monkeypatch):
    """Decoding in DataLoader workers: the loader's seeds come from (seed, position), not the global RNG."""
    from PIL import Image

    from gancli.data import sources

    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(24):
        Image.fromarray(rng.integers(0, 256, size=(16, 16), dtype=np.uint8), mode="L").save(folder / f"{i:02d}.png")
    monkeypatch.setattr("gancli.data.folders.MATERIALIZE_LIMIT_BYTES", 0)  # the folder is decoded lazily, as a big one is
    monkeypatch.setenv("GANCLI_RESIZED_CACHE", "0")  # ... without the resized copy on disk
    assert not sources.load_data(str(folder), resolution=16, channels=1).in_memory

    def run(out, steps, resume=False):
        base = None
        if resume:
            from gancli.train.resume import resume_tree

            base = resume_tree(out / "checkpoints" / "last.safetensors")
        run_config, family_config = cfg.resolve(
            "dcgan", base=base,
            flags={"data": {"source": str(folder), "resolution": 16, "channels": 1},
                   "train": {"steps": steps, "batch_size": 8, "num_workers": 2, "sample_every": 0,
                             "checkpoint_every": 2, "log_every": 1}},
            overrides=["ngf=4", "ndf=4", "z_dim=8"],
        )
        return train(run_config, family_config, out=out, resume=resume, show_progress=False)

    straight = run(tmp_path / "straight", 4)
    run(tmp_path / "resumed", 2)
    resumed = run(tmp_path / "resumed", 4, resume=True)
    a, b = _tensors(straight.last_checkpoint), _tensors(resumed.last_checkpoint)
    for name, value in a.items():
        assert torch.equal(b[name], value), name


def test_the_count_of_skipped_non_finite_steps_survives_a_resume(tmp_path, monkeypatch):
    from _reliability_support import install_fake_plugin
    from test_reliability_train import _train

    from gancli.train.loop import NonFiniteLoss

    monkeypatch.syspath_prepend(str(install_fake_plugin(tmp_path / "site")))
    plugins.refresh()
    _train("faulty", "ring8", tmp_path / "run", "nan_steps=[1, 4]", steps=3, max_nonfinite=1)
    assert ckpt_io.read(tmp_path / "run" / "checkpoints" / "last.safetensors").state["nonfinite"] == 1
    # the second bad step, after the resume, is one too many: the count went on from 1
    with pytest.raises(NonFiniteLoss, match="step 4"):
        _train("faulty", "ring8", tmp_path / "run", "nan_steps=[1, 4]", steps=6, max_nonfinite=1, resume=True)
