"""Training that survives: exact resume, resume validation, non-finite losses, full disks, concurrent runs."""
from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
import torch

from _reliability_support import FAKE_DISTRIBUTION, install_fake_plugin, one_torch_thread, tiny_images

from gancli import checkpoint as ckpt_io
from gancli.errors import GancliError


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    with one_torch_thread():
        yield


def _train(family: str, data: str, out: Path, *settings: str, steps: int, resume: bool = False, **train_flags):
    from gancli import config as cfg
    from gancli.train.loop import train

    flags = {"data": {"source": data}, "train": {"steps": steps, "sample_every": 0, "checkpoint_every": 1,
                                                 "log_every": 1, "sample_grid": 4, **train_flags}}
    if family == "dcgan":
        flags["data"]["resolution"] = 16
        flags["train"].setdefault("batch_size", 8)
        settings = ("ngf=4", "ndf=4", "z_dim=8", *settings)
    else:
        flags["train"].setdefault("batch_size", 16)
    if resume:  # as `gancli train --resume` does: the run's own config is the base layer
        from gancli.train.resume import resume_tree

        base = resume_tree(out / "checkpoints" / "last.safetensors")
        run, family_config = cfg.resolve(family, base=base, flags=flags, overrides=list(settings))
    else:
        run, family_config = cfg.resolve(family, flags=flags, overrides=list(settings))
    return train(run, family_config, out=out, resume=resume, show_progress=False)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> str:
    return str(tiny_images(tmp_path_factory.mktemp("data") / "tiny.npz"))


@pytest.fixture(scope="module")
def fake_site(tmp_path_factory) -> Path:
    return install_fake_plugin(tmp_path_factory.mktemp("site"))


@pytest.fixture
def faulty(fake_site, monkeypatch):
    """The fake 'faulty' points family installed (see _reliability_support)."""
    from gancli import plugins

    monkeypatch.syspath_prepend(str(fake_site))
    plugins.refresh()
    yield lambda out, *settings, steps=6, **kw: _train("faulty", "ring8", out, *settings, steps=steps, **kw)
    plugins.refresh()


# ---------------------------------------------------------------- exact resume


def test_resume_is_bit_identical_to_an_uninterrupted_run(images, tmp_path):
    settings = ("train.ema=true", "train.ema_half_life_kimg=0.01")
    whole = _train("dcgan", images, tmp_path / "whole", *settings, steps=10, log_every=1)
    _train("dcgan", images, tmp_path / "split", *settings, steps=5)
    split = _train("dcgan", images, tmp_path / "split", *settings, steps=10, resume=True)

    a, b = ckpt_io.read(whole.last_checkpoint), ckpt_io.read(split.last_checkpoint)
    assert a.step == b.step == 10 and a.images_seen == b.images_seen == 80
    for prefix in ("G.", "D.", "G_ema.", "state."):
        ta, tb = a.tensors(prefix), b.tensors(prefix)
        assert ta.keys() == tb.keys() and ta, prefix
        different = [name for name in ta if not torch.equal(ta[name], tb[name])]
        assert not different, f"{prefix} differs after resume: {different[:5]}"

    def losses(run: Path) -> list[dict]:
        lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in line.items() if k not in ("seconds", "images_per_second")} for line in lines]

    assert losses(tmp_path / "whole") == losses(tmp_path / "split")
    assert [line["step"] for line in losses(tmp_path / "split")] == list(range(1, 11))


def test_resume_drops_metric_lines_after_the_checkpoint_and_stale_temporaries(images, tmp_path):
    run = tmp_path / "run"
    _train("dcgan", images, run, steps=3)
    with (run / "metrics.jsonl").open("a") as f:  # a killed run logged step 4 but never saved it
        f.write(json.dumps({"step": 4, "d/loss": 1.0}) + "\n" + '{"step": 5, "d/lo')
    stale = run / "checkpoints" / ".step-000004.safetensors.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    _train("dcgan", images, run, steps=5, resume=True)
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5]
    assert not stale.exists()


# ---------------------------------------------------------------- resume validation


def test_resume_may_change_steps_logging_sampling_and_declared_hyperparameters(faulty, tmp_path):
    run = tmp_path / "run"
    faulty(run, steps=2)
    result = faulty(run, "lr=0.0005", steps=4, resume=True, log_every=2, sample_every=1, checkpoint_every=2,
                    keep_checkpoints=1, sample_grid=8, max_nonfinite=3)
    assert result.step == 4
    saved = ckpt_io.read(result.last_checkpoint).config
    assert saved["model"]["lr"] == 0.0005 and saved["train"]["log_every"] == 2
    assert (run / "samples" / "step-000004.png").exists()


@pytest.mark.parametrize(
    "settings, flags, message",
    [
        (("hidden=16",), {}, r"model\.hidden \(8 → 16\)"),
        (("z_dim=3",), {}, r"model\.z_dim"),
        ((), {"seed": 7}, r"train\.seed \(0 → 7\)"),
        ((), {"batch_size": 32}, r"train\.batch_size"),
        (("train.ema=true",), {}, r"train\.ema"),
    ],
)
def test_resume_refuses_architecture_or_step_defining_changes(faulty, tmp_path, settings, flags, message):
    run = tmp_path / "run"
    faulty(run, steps=2)
    before = (run / "checkpoints" / "last.safetensors").read_bytes()
    with pytest.raises(GancliError, match=message):
        faulty(run, *settings, steps=4, resume=True, **flags)
    assert (run / "checkpoints" / "last.safetensors").read_bytes() == before


def test_resume_refuses_another_family(faulty, images, tmp_path):
    run = tmp_path / "run"
    faulty(run, steps=1)
    from gancli import config as cfg
    from gancli.train.loop import train
    from gancli.train.resume import check_compatible

    other, family_config = cfg.resolve("faulty2", flags={"data": {"source": "ring8"}})
    with pytest.raises(GancliError, match="is a 'faulty' run; the command trains 'faulty2'"):
        train(other, family_config, out=run, resume=True, show_progress=False)
    ckpt = ckpt_io.read(run / "checkpoints" / "last.safetensors")
    with pytest.raises(GancliError, match="'faulty' run"):
        check_compatible(ckpt, other, ckpt.spec)


@pytest.mark.parametrize("installed, allowed", [("1.9.0", True), ("2.0.0", False)])
def test_resume_checks_the_plugin_major_version(faulty, tmp_path, monkeypatch, installed, allowed):
    from gancli import plugins

    run = tmp_path / "run"
    faulty(run, steps=1)  # written by version 1.2.3
    monkeypatch.syspath_prepend(str(install_fake_plugin(tmp_path / f"site-{installed}", version=installed)))
    plugins.refresh()
    assert plugins.get_record("faulty").version == installed
    if allowed:
        assert faulty(run, steps=2, resume=True).step == 2
    else:
        with pytest.raises(GancliError, match=rf"{FAKE_DISTRIBUTION} 1\.2\.3; installed is {FAKE_DISTRIBUTION} 2\.0\.0"):
            faulty(run, steps=2, resume=True)


def test_release_series_follows_semver_before_1_0():
    from gancli.train.resume import release_series

    assert release_series("1.4.2") == release_series("1.0") == "1"
    assert release_series("0.1.0") != release_series("0.2.0")
    assert release_series("0.1.0") == release_series("0.1.7")


def test_damaged_last_checkpoint_names_the_newest_intact_one(faulty, tmp_path):
    run = tmp_path / "run"
    faulty(run, steps=3)
    last = run / "checkpoints" / "last.safetensors"
    last.unlink()  # break the hard link first, so only last is damaged
    last.write_bytes(b"\0" * 40)
    with pytest.raises(GancliError, match=r"newest intact checkpoint is .*step-000003\.safetensors"):
        faulty(run, steps=4, resume=True)


# ---------------------------------------------------------------- non-finite values


def _assert_clean_last(run: Path, step: int) -> None:
    import gancli

    last = run / "checkpoints" / "last.safetensors"
    ckpt = ckpt_io.read(last)
    assert ckpt.step == step
    for prefix in ("G.", "D."):
        assert all(torch.isfinite(t).all() for t in ckpt.tensors(prefix).values() if t.is_floating_point())
    assert torch.isfinite(gancli.load(last).sample(4, seed=0)).all()


@pytest.mark.parametrize("side, term", [("d", "the D loss term 'penalty'"), ("g", "the G loss term 'penalty'")])
def test_non_finite_loss_stops_with_step_term_and_remedies(faulty, tmp_path, side, term):
    from gancli.train.loop import NonFiniteLoss

    run = tmp_path / "run"
    with pytest.raises(NonFiniteLoss) as caught:
        faulty(run, "nan_steps=[3]", f"nan_side={side}")
    message = str(caught.value)
    assert message.startswith(f"step 3: {term} became non-finite")
    assert str(run / "checkpoints" / "last.safetensors") in message
    for remedy in ("lower learning rate", "--precision no", "fp32", "--max-nonfinite"):
        assert remedy in message
    _assert_clean_last(run, 3)


def test_max_nonfinite_skips_that_many_bad_steps(faulty, tmp_path):
    from gancli.train.loop import NonFiniteLoss

    assert faulty(tmp_path / "ok", "nan_steps=[1, 4]", max_nonfinite=2).step == 6
    _assert_clean_last(tmp_path / "ok", 6)
    with pytest.raises(NonFiniteLoss, match="step 4: the D loss term 'penalty'"):
        faulty(tmp_path / "too-many", "nan_steps=[1, 2, 4]", max_nonfinite=2)
    _assert_clean_last(tmp_path / "too-many", 4)


def test_non_finite_weights_are_never_written(faulty, tmp_path):
    from gancli.train.loop import NonFiniteLoss

    run = tmp_path / "run"
    with pytest.raises(NonFiniteLoss, match="step 3: the generator weights became non-finite"):
        faulty(run, "poison_step=2", "train.ema=true")  # after_g_step of step 2 writes a NaN into G
    _assert_clean_last(run, 2)


def test_a_new_run_that_fails_before_any_checkpoint_leaves_nothing(faulty, tmp_path):
    from gancli.train.loop import NonFiniteLoss

    run = tmp_path / "new" / "folders" / "run"
    with pytest.raises(NonFiniteLoss, match="no checkpoint was written yet"):
        faulty(run, "nan_steps=[0]")
    assert not (tmp_path / "new").exists()  # nor the parent folders it made
    assert faulty(run, steps=1).step == 1  # the same --out works again

    existing = tmp_path / "mine"
    existing.mkdir()
    (existing / "notes.txt").write_text("keep me")
    with pytest.raises(NonFiniteLoss):
        faulty(existing, "nan_steps=[0]")
    assert sorted(p.name for p in existing.iterdir() if not p.name.startswith(".")) == ["notes.txt"]


# ---------------------------------------------------------------- disks and concurrent runs


@pytest.mark.parametrize(
    "error, reason",
    [(errno.ENOSPC, "the disk is full"), (errno.EACCES, "permission denied"), (errno.EROFS, "read-only")],
)
def test_failing_disk_mid_run_says_so_and_keeps_the_previous_checkpoint(faulty, tmp_path, monkeypatch, error, reason):
    import os

    real_save, calls = ckpt_io.save, []

    def failing_save(path, tensors, metadata):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(error, os.strerror(error), str(path))
        real_save(path, tensors, metadata)

    monkeypatch.setattr(ckpt_io, "save", failing_save)
    run = tmp_path / "run"
    with pytest.raises(GancliError) as caught:
        faulty(run)
    message = str(caught.value)
    assert "step-000003.safetensors" in message and reason in message
    assert "last checkpoint" in message and "is intact" in message and "--resume" in message
    _assert_clean_last(run, 2)
    monkeypatch.setattr(ckpt_io, "save", real_save)
    assert faulty(run, steps=4, resume=True).step == 4


def _forbid_writes(folder: Path) -> None:
    """Take away write permission for real: chmod for a user; root ignores modes, so make it immutable."""
    import os
    import subprocess

    if os.geteuid() != 0:
        folder.chmod(0o555)
    elif subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        raise OSError("cannot make the folder immutable")


def _allow_writes(folder: Path) -> None:
    import os
    import subprocess

    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
    folder.chmod(0o755)


def test_checkpoint_folder_turning_read_only_mid_run(faulty, tmp_path, monkeypatch):
    """Permission lost on the real file system, after the second checkpoint."""
    from gancli.train import loop

    probe = tmp_path / "probe"
    probe.mkdir()
    try:
        _forbid_writes(probe)
    except (OSError, FileNotFoundError):
        pytest.skip("cannot take write permission away here (root without chattr)")
    finally:
        _allow_writes(probe)

    run = tmp_path / "run"
    real_prune = loop.RunDir.prune_checkpoints

    def prune_then_forbid(self, keep):
        real_prune(self, keep)
        if len(self.step_checkpoints()) == 2:
            _forbid_writes(self.checkpoints)

    monkeypatch.setattr(loop.RunDir, "prune_checkpoints", prune_then_forbid)
    try:
        with pytest.raises(GancliError, match="step-000003.safetensors: permission denied.*is intact"):
            faulty(run)
    finally:
        _allow_writes(run / "checkpoints")
    _assert_clean_last(run, 2)


def test_two_processes_cannot_train_into_one_run(faulty, tmp_path):
    from gancli.train.rundir import RunDir

    run = tmp_path / "run"
    faulty(run, steps=1)
    with RunDir(run).lock():  # another gancli holds the run
        with pytest.raises(GancliError, match="is being trained by another gancli process"):
            faulty(run, steps=2, resume=True)
    assert faulty(run, steps=2, resume=True).step == 2
