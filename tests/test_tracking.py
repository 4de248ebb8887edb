"""--log-with: TensorBoard event files written offline and read back (scalars, the sample grid, the settings)."""
from __future__ import annotations

import pytest

from gancli import config as cfg
from gancli.errors import GancliError
from gancli.train.loop import train
from gancli.train.tracking import check_trackers, hyperparameters


def _run(tiny_npz, out, **train_flags):
    run, family_config = cfg.resolve(
        "dcgan", flags={"data": {"source": str(tiny_npz), "resolution": 16},
                        "train": {"steps": 4, "batch_size": 8, "log_every": 2, "sample_every": 2, **train_flags}},
        overrides=["ngf=4", "ndf=4", "z_dim=8"])
    return train(run, family_config, out=out, show_progress=False)


def test_tensorboard_gets_every_logged_term_the_rates_and_the_sample_grids(tiny_npz, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = _run(tiny_npz, tmp_path / "run", log_with=["tensorboard"])
    folders = [p.parent for p in (result.run_dir / "trackers").rglob("events.out.tfevents.*")]
    assert folders, "no TensorBoard event file under RUN/trackers"
    events = EventAccumulator(str(folders[0]), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"d/loss", "g/loss", "lr/G", "lr/D", "images_per_second", "kimg"} <= scalars, scalars
    assert [e.step for e in events.Scalars("g/loss")] == [2, 4]
    assert events.Scalars("lr/D")[0].value == pytest.approx(2e-4)
    assert events.Scalars("kimg")[-1].value == pytest.approx(0.032)
    grids = events.Images("samples")
    assert [g.step for g in grids] == [2, 4] and grids[0].width > 16 and grids[0].height > 16
    # the settings as hyperparameters (TensorBoard writes them to a run of their own)
    from tensorboard.plugins.hparams import plugin_data_pb2

    found = {}
    for folder in folders:
        run = EventAccumulator(str(folder))
        run.Reload()
        try:
            contents = run.PluginTagToContent("hparams")
        except KeyError:  # the scalars' run
            continue
        for tag, content in contents.items():
            data = plugin_data_pb2.HParamsPluginData.FromString(content)
            if data.HasField("session_start_info"):
                found.update({k: v for k, v in data.session_start_info.hparams.items()})
    assert found["family"].string_value == "dcgan" and found["train.steps"].number_value == 4


def test_a_missing_tracker_package_is_one_line_naming_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(GancliError, match=r"--log-with wandb needs the wandb package: pip install 'gancli\[wandb\]'"):
        check_trackers(["wandb"])
    with pytest.raises(GancliError, match="unknown tracker 'comet'"):
        check_trackers(["comet"])


def test_the_settings_become_one_flat_level():
    assert hyperparameters({"train": {"steps": 4, "log_with": ["tensorboard"]}, "model": {"ngf": 4}, "family": "dcgan"}) \
        == {"train.steps": 4, "train.log_with": "['tensorboard']", "model.ngf": 4, "family": "dcgan"}


def test_log_with_on_the_command_line(cli, tiny_npz, tmp_path):
    pytest.importorskip("tensorboard")
    out = tmp_path / "run"
    result = cli("train", "dcgan", "--data", str(tiny_npz), "--resolution", "16", "--steps", "2", "--batch", "8",
                 "--set", "ngf=4", "--set", "ndf=4", "--set", "z_dim=8", "--log-with", "tensorboard", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert list((out / "trackers").rglob("events.out.tfevents.*"))
    assert 'log_with = ["tensorboard"]' in (out / "config.toml").read_text()
    bad = cli("train", "dcgan", "--data", str(tiny_npz), "--log-with", "comet", "--out", str(tmp_path / "bad"))
    assert bad.exit_code == 2 and "log_with" in bad.stderr and not (tmp_path / "bad").exists()
